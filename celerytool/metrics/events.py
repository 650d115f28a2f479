"""Task and worker metrics from Celery's event stream, in bounded memory.

``EventMetrics.feed`` takes the event dicts of ``control.events.EventStream``;
``collect`` (prometheus_client's custom-collector protocol) reads them out.
Memory is bounded whatever the stream holds: label values go through
``LabelBudget`` (``--max-tasks``, ``--max-workers``; the rest is ``other``),
the task-id table keeps the newest ``IDS_KEPT`` ids, and workers not heard of
for ``forget_after`` seconds lose their series and their place in the budget.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celerytool.metrics.labels import (
    OTHER,
    LabelBudget,
    exception_class,
    number,
    short,
    worker_host,
)

if TYPE_CHECKING:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# Prometheus' (and prometheus_client's) default histogram buckets, +Inf implied
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
COUNTED = ("task-sent", "task-received", "task-started", "task-succeeded", "task-failed",
           "task-retried", "task-revoked", "task-rejected")
WORKER_EVENTS = ("worker-online", "worker-offline", "worker-heartbeat")
FINAL = ("task-succeeded", "task-failed", "task-revoked", "task-rejected")
IDS_KEPT = 100_000  # task id -> (name, queue, sent, received): for events that lack them
WORKERS_KEPT = 10_000  # worker states (by full name), whatever --max-workers allows as labels
MAX_QUEUES = 1_000
MAX_EXCEPTIONS = 100
SWEEP_EVERY = 1.0  # seconds between looks for timed-out / forgotten workers

HELP = {
    "task-sent": "Task messages published (task-sent events; producers need task_send_sent_event).",
    "task-received": "Tasks a worker received from the broker (task-received events).",
    "task-started": "Tasks a worker started executing (task-started events).",
    "task-succeeded": "Tasks that succeeded (task-succeeded events).",
    "task-failed": "Tasks that failed, by exception class (task-failed events).",
    "task-retried": "Tasks that failed and will be retried (task-retried events).",
    "task-revoked": "Tasks revoked (task-revoked events).",
    "task-rejected": "Tasks a worker rejected, to requeue or dead-letter (task-rejected events).",
}
TaskKey = tuple[str, str, str]  # name, hostname, queue_name


@dataclass
class EventConfig:
    prefix: str = "celery_"
    static: dict[str, str] = field(default_factory=dict)
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    max_tasks: int = 200
    max_workers: int = 100
    worker_label: str = "name"  # "name": celery@host as sent; "host": the part after @
    worker_timeout: float = 60.0
    forget_after: float = 600.0


class Histogram:
    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * (size + 1)
        self.total = 0.0

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        self.counts[bisect.bisect_left(bounds, value)] += 1
        self.total += value

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        from prometheus_client.utils import floatToGoString as float_text

        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((float_text(bound), running))
        return out


@dataclass
class WorkerState:
    label: str
    last_seen: float
    online: bool = True
    active: int = 0
    processed: int = 0


class EventMetrics:
    """Counters, histograms and worker gauges from events; a prometheus_client collector."""

    def __init__(self, config: EventConfig, clock: Callable[[], float] = time.time) -> None:
        self.c = config
        self.clock = clock
        self.lock = threading.Lock()
        self.tasks = LabelBudget(config.max_tasks)
        self.workers = LabelBudget(config.max_workers)
        self.queues = LabelBudget(MAX_QUEUES)
        self.exceptions = LabelBudget(MAX_EXCEPTIONS)
        self.counts: dict[str, dict[TaskKey, float]] = {t: {} for t in COUNTED if t != "task-failed"}
        self.failed: dict[tuple[str, str, str, str], float] = {}  # name, hostname, exception, queue
        self.runtime: dict[TaskKey, Histogram] = {}
        self.wait: dict[TaskKey, Histogram] = {}
        self.ids: OrderedDict[str, list[Any]] = OrderedDict()  # id -> [name, queue, sent, received]
        self.states: OrderedDict[str, WorkerState] = OrderedDict()
        self.label_seen: dict[str, float] = {}  # worker label -> last event from it
        self.events: dict[str, float] = {}  # events read, by type (bounded: known types + other)
        self.ignored = 0  # events refused: not a dict, no type, fields of the wrong kind
        self.last_sweep = 0.0

    # -- feeding --------------------------------------------------------------------------
    def feed(self, batch: Iterable[object]) -> None:
        with self.lock:
            now = self.clock()
            if now - self.last_sweep >= SWEEP_EVERY:  # first: a forgotten worker frees its label
                self._sweep(now)
            for event in batch:
                try:
                    self._one(event)
                except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
                    self.ignored += 1  # one bad event fails alone

    def _one(self, event: object) -> None:
        if not isinstance(event, dict):
            self.ignored += 1
            return
        kind = event.get("type")
        if kind not in COUNTED and kind not in WORKER_EVENTS:
            self._seen_type(OTHER)
            return
        self._seen_type(kind)
        host = short(event.get("hostname"))
        now = number(event.get("local_received")) or self.clock()
        label = self._worker_label(host) if host else ""
        if label and label != OTHER:
            self.label_seen[label] = now
        if kind in WORKER_EVENTS:
            if host:
                self._worker(kind, host, label, event, now)
            return
        self._task(kind, label, event, now)

    def _seen_type(self, kind: str) -> None:
        self.events[kind] = self.events.get(kind, 0) + 1

    def _worker_label(self, host: str) -> str:
        return self.workers(worker_host(host) if self.c.worker_label == "host" else host)

    def _worker(self, kind: str, host: str, label: str, event: dict[str, Any], now: float) -> None:
        state = self.states.get(host)
        if state is None:
            state = self.states[host] = WorkerState(label, now)
            if len(self.states) > WORKERS_KEPT:
                self.states.popitem(last=False)
        else:
            self.states.move_to_end(host)
        state.last_seen = now
        state.online = kind != "worker-offline"
        if kind == "worker-heartbeat":
            active, processed = number(event.get("active")), number(event.get("processed"))
            if active is not None:
                state.active = int(active)
            if processed is not None:
                state.processed = int(processed)
        elif kind == "worker-offline":
            state.active = 0

    def _task(self, kind: str, label: str, event: dict[str, Any], now: float) -> None:
        task_id = short(event.get("uuid"))
        known = self.ids.get(task_id) if task_id else None
        name = short(event.get("name"))
        if known is None and task_id and kind in ("task-sent", "task-received"):
            known = self.ids[task_id] = [name, "", None, None]
            if len(self.ids) > IDS_KEPT:
                self.ids.popitem(last=False)
        if known is not None:
            if name:
                known[0] = name
            else:
                name = known[0]
        stamp = number(event.get("timestamp"))
        if kind == "task-sent":
            queue = short(event.get("queue"))
            if known is not None:
                known[1], known[2] = queue, stamp
        elif kind == "task-received" and known is not None:
            known[3] = stamp
        queue = known[1] if known is not None else ""
        key = (self.tasks(name or "unknown"), label, self.queues(queue) if queue else "")
        if kind == "task-failed":
            exc = self.exceptions(exception_class(event.get("exception")))
            fkey = (key[0], key[1], exc, key[2])
            self.failed[fkey] = self.failed.get(fkey, 0) + 1
        else:
            counts = self.counts[kind]
            counts[key] = counts.get(key, 0) + 1
        if kind == "task-succeeded":
            runtime = number(event.get("runtime"), maximum=1e9)
            if runtime is not None:
                self._observe(self.runtime, key, runtime)
        elif kind == "task-started" and known is not None and stamp is not None:
            # from task-sent; but the producer stamps task-sent after publishing, so a quick
            # worker can start first: then from task-received (the worker's own clock)
            begun = [t for t in (known[2], known[3]) if t is not None]
            if begun:
                earlier = [t for t in begun if t <= stamp]
                self._observe(self.wait, key, stamp - min(earlier) if earlier else 0.0)
        if kind in FINAL and task_id:
            self.ids.pop(task_id, None)

    def _observe(self, table: dict[TaskKey, Histogram], key: TaskKey, value: float) -> None:
        hist = table.get(key)
        if hist is None:
            hist = table[key] = Histogram(len(self.c.buckets))
        hist.observe(self.c.buckets, value)

    # -- workers that went away -----------------------------------------------------------
    def _sweep(self, now: float) -> None:
        self.last_sweep = now
        for host in [h for h, s in self.states.items() if now - s.last_seen > self.c.forget_after]:
            del self.states[host]  # also those counted as ``other``
        gone = [label for label, seen in self.label_seen.items() if now - seen > self.c.forget_after]
        if not gone:
            return
        drop = set(gone)
        for label in gone:
            del self.label_seen[label]
            self.workers.release(label)
        for host in [h for h, s in self.states.items() if s.label in drop]:
            del self.states[host]
        for counts in self.counts.values():
            for key in [k for k in counts if k[1] in drop]:
                del counts[key]
        for fkey in [k for k in self.failed if k[1] in drop]:
            del self.failed[fkey]
        for table in (self.runtime, self.wait):
            for key in [k for k in table if k[1] in drop]:
                del table[key]

    # -- reading out ----------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        p, static = self.c.prefix, self.c.static
        names, values = list(static), list(static.values())
        task_labels = ["name", "hostname", "queue_name", *names]
        with self.lock:
            now = self.clock()
            self._sweep(now)
            worker_side = set().union(*(self.counts[t] for t in COUNTED if t not in ("task-sent", "task-failed")))
            worker_side |= {(k[0], k[1], k[3]) for k in self.failed}
            for kind in COUNTED:
                short_name = kind.split("-", 1)[1]
                if kind == "task-failed":
                    fam = CounterMetricFamily(f"{p}task_failed", HELP[kind],
                                              labels=["name", "hostname", "exception", "queue_name", *names])
                    seen = {(k[0], k[1], k[3]) for k in self.failed}
                    for fkey, n in self.failed.items():
                        fam.add_metric([*fkey, *values], n)
                    for key in worker_side - seen:  # zero series, as celery-exporter shows them
                        fam.add_metric([key[0], key[1], "", key[2], *values], 0)
                    yield fam
                    continue
                fam = CounterMetricFamily(f"{p}task_{short_name}", HELP[kind], labels=task_labels)
                counts = self.counts[kind]
                for key, n in counts.items():
                    fam.add_metric([*key, *values], n)
                if kind != "task-sent":
                    for key in worker_side - counts.keys():
                        fam.add_metric([*key, *values], 0)
                yield fam
            for table, metric, text in (
                    (self.runtime, "task_runtime", "Task run time in seconds (runtime of task-succeeded events)."),
                    (self.wait, "task_queue_wait_seconds",
                     "Seconds from task-sent (else task-received) to task-started.")):
                hfam = HistogramMetricFamily(f"{p}{metric}", text, labels=task_labels)
                for key, hist in table.items():
                    hfam.add_metric([*key, *values], hist.cumulative(self.c.buckets), hist.total)
                yield hfam
            yield from self._worker_families(now, GaugeMetricFamily, CounterMetricFamily)
            fam = CounterMetricFamily("celerytool_events_read", "Events read from the event stream, by type.",
                                      labels=["type", *names])
            for kind, n in sorted(self.events.items()):
                fam.add_metric([kind, *values], n)
            yield fam
            fam = CounterMetricFamily("celerytool_events_ignored", "Events refused as malformed.",
                                      labels=names)
            fam.add_metric(values, self.ignored)
            yield fam

    def _worker_families(self, now: float, gauge: type[GaugeMetricFamily],
                         counter: type[CounterMetricFamily]) -> Iterator[Metric]:
        p, names, values = self.c.prefix, list(self.c.static), list(self.c.static.values())
        up: dict[str, int] = {}
        active: dict[str, int] = {}
        processed: dict[str, int] = {}
        for state in self.states.values():
            alive = state.online and now - state.last_seen <= self.c.worker_timeout
            up[state.label] = max(up.get(state.label, 0), int(alive))
            active[state.label] = active.get(state.label, 0) + (state.active if alive else 0)
            processed[state.label] = processed.get(state.label, 0) + state.processed
        for metric, kind, text, table in (
                ("worker_up", gauge, "1 while the worker's heartbeats arrive (0 after --worker-timeout "
                                     "without one, or after worker-offline).", up),
                ("worker_tasks_active", gauge, "Tasks the worker is executing (its last heartbeat).", active),
                ("worker_tasks_processed", counter, "Tasks the worker has processed since it started "
                                                    "(its last heartbeat).", processed)):
            fam = kind(f"{p}{metric}", text, labels=["hostname", *names])
            for label in sorted(table):
                fam.add_metric([label, *values], table[label])
            yield fam
