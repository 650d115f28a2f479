"""The interface every broker adapter implements, and the options they share.

Adapters know nothing of click or rich: they take a parsed URL and
``BrokerOptions``, return model objects, raise ``CeleryToolError``
subclasses, and put non-fatal remarks in ``warnings`` for the CLI to print.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.export_format import (  # noqa: F401  (the broker packages read these here)
    AMQP_CONTENT_PROPERTIES,
    AMQP_OTHER_PROPERTIES,
    SUMMARY_KEYS,
    ExportRecord,
)
from celerytool.kombu_layout import DEFAULT_PRIORITY_STEPS, DEFAULT_SEP, is_plumbing
from celerytool.model import Binding, Message, OutgoingMessage, PauseRecord, QueueInfo
from celerytool.selection import Selection
from celerytool.urls import BrokerURL


@dataclass(frozen=True)
class BrokerOptions:
    global_keyprefix: str = ""  # kombu Redis transport option
    sep: str = DEFAULT_SEP  # kombu Redis priority / binding separator
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    connect_timeout: float = 5.0
    limits: Limits = DEFAULT_LIMITS
    management_url: str | None = None  # RabbitMQ HTTP API
    include_internal: bool = False  # pidbox / celeryev queues


@dataclass(frozen=True)
class Capabilities:
    """What a broker can do, so that commands ask instead of comparing broker kinds."""

    name: str  # for messages: "Redis", "RabbitMQ"
    in_flight: bool = False  # in-flight messages can be listed and requeued (`unacked`, `requeue`)
    in_flight_note: str = ""  # why not, when it cannot
    max_priority: int | None = None  # highest message priority served; None: set per queue
    visibility_timeout: bool = False  # a message held past the visibility timeout is redelivered
    keyspace: bool = False  # a database of keys that can be walked and classified (`doctor`)
    dead_letters: bool = False  # messages carry their dead-lettering history (x-death): `move --to-origin`


class Broker(Protocol):
    """What every adapter offers. Commands call only these."""

    kind: str
    url: BrokerURL
    capabilities: Capabilities
    warnings: list[str]

    def queues(self, names: Iterable[str] = (), scan: bool | None = None,
               exact: bool | None = None) -> list[QueueInfo]:
        """Known queues with their depth, plus ``names`` even when unknown.

        ``scan``: also look for queues that have messages but no binding (Redis;
        None: when the database is small enough).  ``exact``: count now rather
        than take a statistics sample (RabbitMQ; None: when there are few
        queues; Redis counts are always exact)."""
        ...

    def bindings(self) -> list[Binding]: ...

    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]:
        """Messages in consumption order, without changing the queue."""
        ...

    def check_destination(self, queue: str) -> None:
        """Raise (NotFound, DataError) when ``queue`` cannot receive messages; before anything moves."""
        ...

    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """Publish as kombu would (routing included); return how many were sent.

        Raises CeleryToolError (exit 1) for an unroutable message and
        BrokerUnavailable (exit 69) when the broker cannot be reached.
        """
        ...

    def census(self, queue: str, by: str, selection: Selection, tick: Tick | None = None) -> Any:
        """``summary``: a ``brokers.census.Census`` of ``queue`` grouped by the field path ``by``."""
        ...

    def ops(self) -> BrokerOps:
        """The changing operations (purge, move, export, import, ...) on this broker."""
        ...

    def pause_records(self, queues: Iterable[str] | None = None) -> dict[str, PauseRecord]:
        """The queues `celerytool pause` stopped (all, or those of ``queues`` that are), by
        queue: the records kept in the broker."""
        ...

    def save_pause_record(self, queue: str, record: PauseRecord | None) -> None:
        """Keep ``record`` for ``queue`` (replacing any), or remove the queue's record (None)."""
        ...

    def close(self) -> None: ...


_DELAY_LEVEL = re.compile(r"celery_delayed_(\d+)")
DELAY_LEVELS = 28  # Celery's native delayed delivery on RabbitMQ: celery_delayed_0 .. _27


def is_delay_queue(name: str) -> bool:
    """One of the queues / exchanges of Celery's native delayed delivery (RabbitMQ, Celery 5.5+)."""
    m = _DELAY_LEVEL.fullmatch(name)
    return bool(m and int(m.group(1)) < DELAY_LEVELS) or name == "celery_delayed_delivery"


PAUSE_RECORDS = "celerytool.paused"  # Redis: a hash, queue -> record; RabbitMQ: queues PAUSE_RECORDS.<queue>


def is_internal_queue(name: str) -> bool:
    """Celery's own plumbing (remote-control, event and delayed-delivery queues) and ours
    (the pause records on RabbitMQ)."""
    return (is_plumbing(name) or is_delay_queue(name)
            or name.startswith(PAUSE_RECORDS + "."))


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort names as people count: q2 before q10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


# -- changing operations (purge, move, export, import, unacked, requeue) ----------------

Tick = Callable[[int], None]  # called with the number of messages examined since the last call
Stop = Callable[[], bool]  # True when the user asked to stop (Ctrl-C): finish cleanly


def _no_tick(n: int) -> None:
    return None


def _never() -> bool:
    return False


@dataclass
class Control:
    """How a long operation reports progress and learns it should stop."""

    tick: Tick = _no_tick
    stop: Stop = _never
    dry_run: bool = False
    on_match: Callable[[Message], None] | None = None  # dry-run listing


@dataclass
class OpResult:
    """What an operation did; ``to_json`` is the command's JSON output."""

    action: str
    queue: str | None = None
    examined: int = 0
    matched: int = 0
    done: int = 0  # removed / moved / written / requeued / imported
    kept: int | None = None  # left in the queue (after the run)
    vanished: int = 0  # matched but taken by a consumer before we got to it
    skipped: int = 0
    interrupted: bool = False
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        word = {"purge": "removed", "move": "moved", "export": "exported", "import": "imported",
                "requeue": "requeued"}.get(self.action, "done")
        out: dict[str, Any] = {"queue": self.queue, word: self.done}
        if self.kept is not None:
            out["kept"] = self.kept
        out.update(examined=self.examined, matched=self.matched)
        if self.vanished:
            out["vanished"] = self.vanished
        if self.skipped:
            out["skipped"] = self.skipped
        out.update(self.extra)
        out["dry_run"] = self.dry_run
        out["interrupted"] = self.interrupted
        return out


class BrokerOps(Protocol):
    def purge(self, queue: str, selection: Selection, control: Control) -> OpResult: ...

    def move(self, src: str, dst: str, selection: Selection, control: Control, *,
             target: Broker | None = None, keep_routing: bool = False) -> OpResult:
        """``target``: another broker to publish to (``--to-broker``); None: this one."""
        ...

    def move_to_origin(self, src: str, selection: Selection, control: Control) -> OpResult:
        """Each selected dead-lettered message back to the queue it was dead-lettered from."""
        ...

    def export(self, queue: str, selection: Selection, control: Control,
               write: Callable[[Iterable[ExportRecord]], None], *, remove: bool = False) -> OpResult: ...

    def import_(self, queue: str, records: Iterable[ExportRecord], control: Control, *,
                keep_routing: bool = False) -> OpResult: ...

    def unacked(self, queue: str | None, selection: Selection) -> Iterator[Message]: ...

    def delayed(self, queue: str | None, selection: Selection, visibility_timeout: float) -> list[Any]:
        """Tasks waiting for their ETA (``DelayedTask``), soonest first: Redis ``unacked``, RabbitMQ's
        delayed-delivery levels."""
        ...

    def requeue(self, queue: str | None, selection: Selection, control: Control, *,
                lock_wait: float = 10.0) -> OpResult: ...


