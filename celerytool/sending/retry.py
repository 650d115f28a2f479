"""Publish retry as in Celery's calling API (``retry`` / ``retry_policy``), via kombu."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from celerytool.errors import BrokerRefused, BrokerUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Celery 5's ``task_publish_retry_policy`` defaults."""

    enabled: bool = True
    max_retries: int = 3
    interval_start: float = 0.0
    interval_step: float = 0.2
    interval_max: float = 1.0


def with_retry(fn: Callable[[], T], policy: RetryPolicy,
               on_retry: Callable[[BrokerUnavailable, float, int], None] | None = None) -> T:
    """Call ``fn``; while the broker is unreachable, retry on kombu's schedule.

    When the policy is spent the last ``BrokerUnavailable`` (exit 69) is raised
    with the number of attempts added.  A ``BrokerRefused`` (read-only replica,
    out of memory, bad credentials) is raised at once: retrying cannot help.
    """
    if not policy.enabled or policy.max_retries <= 0:
        return fn()
    from kombu.utils.functional import retry_over_time

    def errback(exc: BrokerUnavailable, intervals, retries: int) -> float:
        wait = next(intervals)
        if on_retry is not None:
            on_retry(exc, wait, retries + 1)
        return wait

    def attempt() -> T:
        try:
            return fn()
        except BrokerRefused as exc:
            raise _Final(exc) from None

    try:
        return retry_over_time(attempt, (BrokerUnavailable,), errback=errback,
                               max_retries=policy.max_retries,
                               interval_start=policy.interval_start,
                               interval_step=policy.interval_step,
                               interval_max=policy.interval_max)
    except _Final as final:
        raise final.error from None
    except BrokerUnavailable as exc:
        raise BrokerUnavailable(f"{exc.message} (gave up after {policy.max_retries} retries)") from None


class _Final(Exception):
    def __init__(self, error: BrokerRefused) -> None:
        self.error = error
