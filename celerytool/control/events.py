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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celerytool.control.session import ControlSession

TASK_TYPES = ("task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
              "task-retried", "task-revoked", "task-rejected")
WORKER_TYPES = ("worker-online", "worker-offline", "worker-heartbeat")
EVENT_TYPES = TASK_TYPES + WORKER_TYPES
NAMES_KEPT = 100_000  # task id -> name, for events that do not carry the name


@dataclass
class EventFilter:
    types: tuple[str, ...] = ()  # exact types or globs (task-*); empty: all but heartbeats
    task: str | None = None  # glob on the task name
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
        if self.task:
            return kind.startswith("task-") and fnmatch.fnmatchcase(str(event.get("name") or ""), self.task)
        return True


class EventStream:
    """Consume events; ``batches()`` yields the events of each wait (an empty list when idle)."""

    def __init__(self, session: ControlSession, interval: float = 0.25) -> None:
        self.session = session
        self.interval = interval
        self.node_id = f"celerytool.{uuid.uuid4().hex}"

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        from celery.events.receiver import EventReceiver

        session = self.session
        buffer: list[dict[str, Any]] = []
        with session.errors("listening for events on"):
            receiver = EventReceiver(session.connection, handlers={"*": buffer.append},
                                     app=session.app, node_id=self.node_id, accept={"json"})
        session.register_event_queue(receiver.queue.name)
        with session.errors("listening for events on"):
            context = receiver.consumer_context(wakeup=False)
            conn, _channel, _consumers = context.__enter__()
        try:
            # workers send a heartbeat at once, so they are known without waiting 2 s
            session.cast("heartbeat")
            while True:
                with session.errors("listening for events on"):
                    try:
                        conn.drain_events(timeout=self.interval)
                    except TimeoutError:
                        pass
                # drain whatever else is already there before handing a batch out
                deadline = time.monotonic() + 0.05
                while buffer and time.monotonic() < deadline and len(buffer) < 5000:
                    try:
                        conn.drain_events(timeout=0)
                    except (TimeoutError, BlockingIOError):
                        break
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
