"""What the live commands show: plain records with ``to_json()`` (JSON field names are a contract)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from celerytool.jsontext import to_jsonable


@dataclass(frozen=True)
class WorkerInfo:
    """One worker, from ping, stats, active_queues, active/reserved/scheduled and report."""

    name: str
    status: str  # online | silent (bound to the control exchange, did not answer)
    queues: list[str] = field(default_factory=list)
    pool: str | None = None  # prefork / threads / solo / eventlet / gevent
    concurrency: int | None = None
    prefetch: int | None = None
    processed: int | None = None
    active: int | None = None
    reserved: int | None = None
    scheduled: int | None = None
    pid: int | None = None
    uptime: int | None = None  # seconds
    version: str | None = None  # Celery's
    processed_by_task: dict[str, int] = field(default_factory=dict)
    paused: list[str] = field(default_factory=list)  # queues `celerytool pause` stopped on it

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass(frozen=True)
class TaskRow:
    """A task a worker holds (active / reserved / scheduled), decoded like a peek row."""

    worker: str
    state: str  # active | reserved | scheduled
    id: str | None
    task: str | None
    args: Any = None
    kwargs: Any = None
    eta: str | None = None
    time_started: str | None = None
    queue: str | None = None
    priority: int | None = None
    acknowledged: bool | None = None
    worker_pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass(frozen=True)
class WorkerValue:
    """One worker's answer to an inspect command that is not a task list (stats, conf, ...)."""

    worker: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        data = self.value if isinstance(self.value, dict) else {"value": self.value}
        return {"worker": self.worker, **to_jsonable(data)}


@dataclass(frozen=True)
class RevokeAck:
    """One worker's acknowledgement of a revoke."""

    worker: str
    ok: bool
    reply: str

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "ok": self.ok, "reply": self.reply}


def iso_time(epoch: Any) -> str | None:
    """An epoch timestamp as ISO-8601 UTC; None when it is not one."""
    if not isinstance(epoch, (int, float)) or epoch < 1e9:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


@dataclass(frozen=True)
class SteerAck:
    """One worker's answer to a steering command (rate-limit, time-limit, pool ...)."""

    worker: str
    ok: bool
    reply: str

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "ok": self.ok, "reply": self.reply if self.ok else None,
                "error": None if self.ok else self.reply}
