"""The live event stream through Celery's ``EventReceiver``, filtered, in batches.

Events come as Celery's dicts (``type``, ``uuid``, ``hostname``,
``timestamp``, ...), with ``local_received`` added by the receiver and the
task ``name`` filled in from an earlier ``task-received``/``task-sent``
event when the event itself lacks it.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from celerytool.control.replies import UNREADABLE
from celerytool.control.session import ControlSession

TASK_TYPES = ("task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
              "task-retried", "task-revoked", "task-rejected")
WORKER_TYPES = ("worker-online", "worker-offline", "worker-heartbeat")
EVENT_TYPES = TASK_TYPES + WORKER_TYPES
NAMES_KEPT = 100_000  # task id -> name, for events that do not carry the name


@dataclass
class EventFilter:
    types: tuple[str, ...] = ()  # exact types or globs (task-*); empty: all but heartbeats
    tasks: tuple[str, ...] = ()  # globs on the task name (any of them)
    worker: str | None = None  # glob on the hostname
    names: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def remember(self, event: dict[str, Any]) -> None:
        """Fill in ``name`` from earlier events; remember it for later ones."""
        task_id = event.get("uuid")
        if not task_id:
            return
        name = event.get("name")
        if name:
            self.names[task_id] = name
            if len(self.names) > NAMES_KEPT:
                self.names.popitem(last=False)
        else:
            known = self.names.get(task_id)
            if known:
                event["name"] = known

    def matches(self, event: dict[str, Any]) -> bool:
        kind = event.get("type", "")
        if self.types:
            if not any(fnmatch.fnmatchcase(kind, t) for t in self.types):
                return False
        elif kind == "worker-heartbeat":
            return False
        if self.worker and not fnmatch.fnmatchcase(str(event.get("hostname", "")), self.worker):
            return False
        if self.tasks:
            name = str(event.get("name") or "")
            return kind.startswith("task-") and any(fnmatch.fnmatchcase(name, t) for t in self.tasks)
        return True


MAX_TYPE = 64  # characters of an event type

MAX_CLOCK = 2**63
MAX_TIMESTAMP = 10**11  # seconds since 1970: year 5138


def sane_event(event: Any) -> tuple[dict[str, Any] | None, str]:
    """An event as Celery's receiver may process it, or (None, why) when it is malformed.

    Events come from anyone who can publish to the event exchange: a body that
    is not an object, a type that is not text, ids or names that are not text
    are refused; a clock, timestamp or UTC offset of the wrong kind is dropped
    (the receiver then uses its own clock and the time of arrival).
    """
    if not isinstance(event, dict):
        return None, f"an event body of type {type(event).__name__}"
    kind = event.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > MAX_TYPE:
        return None, "an event without a text type"
    for key in ("uuid", "hostname", "name", "exception"):
        if key in event and event[key] is not None and not isinstance(event[key], str):
            return None, f"{kind}: {key} is not text"
    clean = dict(event)
    clock = clean.get("clock")
    if "clock" in clean and not (type(clock) is int and 0 <= clock < MAX_CLOCK):
        del clean["clock"]
    for key, low, high in (("timestamp", 0, MAX_TIMESTAMP), ("utcoffset", -24, 24)):
        value = clean.get(key)
        if key in clean and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                 and low <= value <= high):
            if key == "timestamp":
                clean[key] = time.time()
            else:
                del clean[key]
    return clean, ""


class EventStream:
    """Consume events; ``batches()`` yields the events of each wait (an empty list when idle).

    A malformed event is skipped (counted in ``malformed``, the first reasons kept in
    ``malformed_reasons``) and the stream goes on.
    """

    def __init__(self, session: ControlSession, interval: float = 0.25) -> None:
        self.session = session
        self.interval = interval
        self.node_id = f"celerytool.{uuid.uuid4().hex}"
        self.malformed = 0
        self.malformed_reasons: list[str] = []

    def _skip(self, why: str) -> None:
        self.malformed += 1
        if len(self.malformed_reasons) < 3:
            self.malformed_reasons.append(why)

    def _guard(self, receiver: Any) -> None:
        """Replace the receiver's message callback: each event checked, one bad event fails alone."""
        from_message, process = receiver.event_from_message, receiver.process

        def receive(body: Any, message: Any) -> None:
            for event in body if isinstance(body, list) else [body]:
                clean, why = sane_event(event)
                if clean is None:
                    self._skip(why)
                    continue
                try:
                    process(*from_message(clean))
                except Exception as exc:  # what Celery's receiver could not take
                    self._skip(f"{clean['type']}: {type(exc).__name__}")

        receiver._receive = receive

    def batches(self) -> Generator[list[dict[str, Any]], None, None]:
        from celery.events.receiver import EventReceiver

        session = self.session
        buffer: list[dict[str, Any]] = []
        with session.errors("listening for events on"):
            receiver = EventReceiver(session.connection, handlers={"*": buffer.append},
                                     app=session.app, node_id=self.node_id, accept={"json"})
            self._guard(receiver)
        session.register_event_queue(receiver.queue.name)
        with session.errors("listening for events on"):
            context = receiver.consumer_context(wakeup=False)
            conn, _channel, consumers = context.__enter__()
        for consumer in consumers:  # a body that is not JSON (a pickle, bad bytes) fails alone
            consumer.on_decode_error = lambda message, exc: self._skip(f"an undecodable event ({exc})")
        try:
            # workers send a heartbeat at once, so they are known without waiting 2 s
            session.cast("heartbeat")
            while True:
                with session.errors("listening for events on"):
                    try:
                        conn.drain_events(timeout=self.interval)
                    except TimeoutError:
                        pass
                    except UNREADABLE as exc:  # the transport could not parse the message itself
                        # (before connection_errors: kombu's Redis transport counts KeyError among them)
                        self._skip(f"an unreadable event ({type(exc).__name__}: {str(exc)[:200]})")
                # drain whatever else is already there before handing a batch out
                deadline = time.monotonic() + 0.05
                while buffer and time.monotonic() < deadline and len(buffer) < 5000:
                    try:
                        conn.drain_events(timeout=0)
                    except (TimeoutError, BlockingIOError):
                        break
                    except UNREADABLE as exc:
                        self._skip(f"an unreadable event ({type(exc).__name__}: {str(exc)[:200]})")
                out = buffer[:]
                buffer.clear()
                yield out
        finally:
            try:
                context.__exit__(None, None, None)
            except Exception:
                pass


def enable_events(session: ControlSession, timeout: float = 1.0) -> tuple[list[str], dict[str, str]]:
    """Ask every worker to send task events (``enable_events``), as ``celery control`` does.

    Returns the workers that agreed and ``{worker: error}`` for the others (a
    worker started with neither -E, heartbeats nor gossip has no event dispatcher).
    """
    replies = session.call("enable_events", timeout=timeout)
    ok = sorted(w for w, r in replies.items() if isinstance(r, dict) and "ok" in r)
    failed = {w: str(r.get("error") if isinstance(r, dict) else r) for w, r in replies.items() if w not in ok}
    return ok, failed
