"""The interface every broker adapter implements, and the options they share.

Adapters know nothing of click or rich: they take a parsed URL and
``BrokerOptions``, return model objects, raise ``CeleryToolError``
subclasses, and put non-fatal remarks in ``warnings`` for the CLI to print.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.model import Binding, Message, OutgoingMessage, QueueInfo

DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class BrokerOptions:
    global_keyprefix: str = ""  # kombu Redis transport option
    sep: str = DEFAULT_SEP  # kombu Redis priority / binding separator
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    connect_timeout: float = 5.0
    limits: Limits = DEFAULT_LIMITS
    management_url: str | None = None  # RabbitMQ HTTP API
    include_internal: bool = False  # pidbox / celeryev queues
    extra: dict[str, object] = field(default_factory=dict)


class Broker(Protocol):
    """What every adapter offers. Commands call only these."""

    kind: str
    warnings: list[str]

    def queues(self, names: Iterable[str] = ()) -> list[QueueInfo]:
        """Known queues with their depth, plus ``names`` even when unknown."""
        ...

    def bindings(self) -> list[Binding]: ...

    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]:
        """Messages in consumption order, without changing the queue."""
        ...

    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """Publish as kombu would (routing included); return how many were sent.

        Raises CeleryToolError (exit 1) for an unroutable message and
        BrokerUnavailable (exit 69) when the broker cannot be reached.
        """
        ...

    def close(self) -> None: ...


def is_internal_queue(name: str) -> bool:
    """Celery's own plumbing: remote-control and event queues."""
    return name.endswith(".pidbox") or name.startswith("celeryev.")
