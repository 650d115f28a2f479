"""What ``top`` shows, as data: queue depths over time, worker activity, latest failures.

``TopState`` is fed queue listings (any callable returning ``QueueInfo``s),
worker descriptions (``inspect.gather_workers``) and task events; it keeps
the last minutes of depths for sparklines and computes rates.  Tasks/s come
from events when a worker sends them, from its ``stats`` totals otherwise.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from celerytool.control.records import WorkerInfo, iso_time
from celerytool.jsontext import to_jsonable
from celerytool.model import QueueInfo

HISTORY = 180  # samples kept per queue (3 minutes at one a second)
RATE_WINDOW = 10.0  # seconds of events behind a worker's tasks/s
FAILURES_KEPT = 10
FINISHED = ("task-succeeded", "task-failed", "task-rejected", "task-revoked")


@dataclass(frozen=True)
class QueueRow:
    name: str
    messages: int
    change_per_s: float | None  # depth change per second since the previous sample
    history: list[int]  # oldest first
    consumers: int | None = None


@dataclass(frozen=True)
class WorkerRow:
    name: str
    status: str
    active: int | None
    tasks_per_s: float | None
    rate_from: str | None  # events | stats
    processed: int | None
    queues: list[str]
    concurrency: int | None


@dataclass(frozen=True)
class Failure:
    time: str | None
    task: str | None
    id: str | None
    worker: str | None
    exception: str | None


@dataclass(frozen=True)
class TopSnapshot:
    taken_at: str
    broker: str
    queues: list[QueueRow]
    workers: list[WorkerRow]
    failures: list[Failure]
    events_seen: bool

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass
class _WorkerActivity:
    finished: deque[float] = field(default_factory=deque)  # local times of finished tasks
    running: set[str] = field(default_factory=set)
    last_event: float = 0.0


class TopState:
    def __init__(self, broker: str, list_queues: Callable[[], list[QueueInfo]],
                 now: Callable[[], float] = time.monotonic) -> None:
        self.broker = broker
        self.list_queues = list_queues
        self.now = now
        self.history: dict[str, deque[int]] = {}
        self.last_sample: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, float | None] = {}
        self.queue_infos: list[QueueInfo] = []
        self.workers: list[WorkerInfo] = []
        self.worker_totals: dict[str, tuple[float, int]] = {}
        self.stats_rates: dict[str, float] = {}
        self.activity: dict[str, _WorkerActivity] = {}
        self.failures: deque[Failure] = deque(maxlen=FAILURES_KEPT)
        self.names: dict[str, str] = {}
        self.events_seen = False

    # -- feeding ----------------------------------------------------------------------
    def sample_queues(self) -> None:
        t = self.now()
        self.queue_infos = sorted(self.list_queues(), key=lambda q: q.name)
        for q in self.queue_infos:
            prev = self.last_sample.get(q.name)
            self.rates[q.name] = (q.messages - prev[1]) / (t - prev[0]) if prev and t > prev[0] else None
            self.last_sample[q.name] = (t, q.messages)
            self.history.setdefault(q.name, deque(maxlen=HISTORY)).append(q.messages)

    def set_workers(self, workers: list[WorkerInfo]) -> None:
        t = self.now()
        for w in workers:
            if w.processed is None:
                continue
            prev = self.worker_totals.get(w.name)
            if prev and t > prev[0]:
                self.stats_rates[w.name] = max(0, w.processed - prev[1]) / (t - prev[0])
            self.worker_totals[w.name] = (t, w.processed)
        self.workers = workers

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        t = self.now()
        for e in events:
            kind = e.get("type", "")
            host = e.get("hostname")
            if not kind.startswith("task-") or not host:
                continue
            self.events_seen = True
            task_id = e.get("uuid")
            if e.get("name") and task_id:
                self.names[task_id] = e["name"]
                if len(self.names) > 50_000:
                    self.names.pop(next(iter(self.names)))
            act = self.activity.setdefault(host, _WorkerActivity())
            act.last_event = t
            if kind == "task-started" and task_id:
                act.running.add(task_id)
            elif kind in FINISHED:
                act.running.discard(task_id)
                act.finished.append(t)
            if kind == "task-failed":
                exc = str(e.get("exception") or "").strip().splitlines()
                self.failures.appendleft(Failure(
                    time=iso_time(e.get("timestamp")), task=e.get("name") or self.names.get(task_id or ""),
                    id=task_id, worker=host, exception=exc[-1] if exc else None))

    # -- reading ----------------------------------------------------------------------
    def snapshot(self) -> TopSnapshot:
        from datetime import datetime, timezone

        t = self.now()
        queues = [QueueRow(q.name, q.messages, self.rates.get(q.name), list(self.history.get(q.name, ())),
                           q.consumers) for q in self.queue_infos]
        workers = []
        for w in self.workers:
            act = self.activity.get(w.name)
            if act is not None and t - act.last_event < 60:
                while act.finished and t - act.finished[0] > RATE_WINDOW:
                    act.finished.popleft()
                rate, source = len(act.finished) / RATE_WINDOW, "events"
            elif w.name in self.stats_rates:
                rate, source = self.stats_rates[w.name], "stats"
            else:
                rate, source = None, None
            workers.append(WorkerRow(w.name, w.status, w.active, rate, source, w.processed,
                                     list(w.queues), w.concurrency))
        return TopSnapshot(taken_at=datetime.now(timezone.utc).isoformat(), broker=self.broker,
                           queues=queues, workers=workers, failures=list(self.failures),
                           events_seen=self.events_seen)
