"""What ``results`` asks every backend for, and the pieces each backend shares.

``ResultQuery`` is the selection (states, task-name glob, done since, newest N);
a backend that can filter natively (SQL ``WHERE``) does so, one that cannot
(Redis ``SCAN``) streams its results through ``newest_matching``.  Group
status and polling for ``--wait`` are the same on every backend, so they live
here too.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import heapq
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from celerytool.model import TaskResult

READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
UTC = dt.timezone.utc
_FLOOR = dt.datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ResultQuery:
    statuses: frozenset[str] = frozenset()
    task_globs: tuple[str, ...] = ()  # any of these task-name globs (--task, repeatable)
    since: dt.datetime | None = None  # aware UTC: only results done at or after
    limit: int = 50

    def matches(self, r: TaskResult) -> bool:
        if self.statuses and r.status not in self.statuses:
            return False
        if self.task_globs and not (isinstance(r.name, str) and any(fnmatch.fnmatchcase(r.name, g) for g in self.task_globs)):
            return False
        if self.since is not None:
            when = done_at(r)
            if when is None or when < self.since:
                return False
        return True


class ResultBackend(Protocol):
    """What every result-backend reader offers (Redis, SQL)."""

    kind: str

    def get_many(self, ids: list[str]) -> list[TaskResult]: ...

    def get(self, task_id: str) -> TaskResult: ...

    def wait(self, ids: list[str], timeout: float | None,
             on_change: Callable[[TaskResult], None] | None = None) -> tuple[list[TaskResult], bool]: ...

    def select(self, query: ResultQuery) -> list[TaskResult]: ...

    def stream(self, query: ResultQuery) -> Iterator[TaskResult]: ...

    def close(self) -> None: ...


def done_at(r: TaskResult) -> dt.datetime | None:
    if not r.date_done:
        return None
    try:
        value = dt.datetime.fromisoformat(r.date_done)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def newest_matching(results: Iterable[TaskResult], query: ResultQuery) -> list[TaskResult]:
    """The newest ``query.limit`` matching results (undated last), keeping only those in memory."""
    pairs = ((done_at(r) or _FLOOR, r) for r in results if query.matches(r))
    return [r for _, r in heapq.nlargest(query.limit, pairs, key=lambda pair: pair[0])]


def with_group_status(group: TaskResult, get_many: Callable[[list[str]], list[TaskResult]]) -> TaskResult:
    """A group is SUCCESS when all its tasks are, FAILURE when one failed, else PENDING; a
    group whose stored value could not be decoded stays as read (its ``error`` set)."""
    if group.error:
        return group
    children = [c for c in (group.children or []) if isinstance(c, str)]
    if not children:
        return replace(group, status="SUCCESS")
    states = [r.status for r in get_many(children)]
    if any(s in ("FAILURE", "REVOKED") for s in states):
        status = "FAILURE"
    elif all(s == "SUCCESS" for s in states):
        status = "SUCCESS"
    else:
        status = "PENDING"
    return replace(group, status=status, result={"tasks": dict(zip(children, states, strict=True))})


def poll_wait(get_many: Callable[[list[str]], list[TaskResult]], ids: list[str], timeout: float | None,
              on_change: Callable[[TaskResult], None] | None = None,
              interval: float = 0.5) -> tuple[list[TaskResult], bool]:
    """Read ``ids`` every ``interval`` s until all are ready or ``timeout`` passes: (results, timed_out).

    For backends that cannot notify (SQL): Celery itself polls them every 0.5 s.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    current = {r.id: r for r in get_many(ids)}
    if on_change is not None:
        for r in current.values():
            on_change(r)
    while not all(r.status in READY_STATES for r in current.values()):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return [current[i] for i in ids], True
        time.sleep(interval if left is None else min(interval, left))
        pending = [i for i, r in current.items() if r.status not in READY_STATES]
        for r in get_many(pending):
            if r.status != current[r.id].status or r.meta != current[r.id].meta:
                current[r.id] = r
                if on_change is not None:
                    on_change(r)
    return [current[i] for i in ids], False
