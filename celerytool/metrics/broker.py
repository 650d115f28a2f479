"""Queue metrics read from the broker at scrape time (a prometheus_client custom collector).

One ``Broker.queues`` call a scrape (Redis: pipelined LLENs over the priority
lists, no walk; RabbitMQ: the management API, or passive declares), plus the
in-flight counts the adapter can give cheaply.  An unreachable broker is
``celery_broker_up 0`` and no queue series, never an exception out of the
scrape; the adapter is opened again on the next one.

Delayed work (``--delayed``): the adapters' ``delayed`` walk (Redis: kombu's ``unacked``
hash; RabbitMQ: the delayed-delivery levels), counted by destination queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from celerytool.errors import CeleryToolError
from celerytool.metrics.labels import LabelBudget

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from celerytool.brokers.base import Broker
    from celerytool.model import QueueInfo

MAX_QUEUE_SERIES = 10_000


@dataclass
class BrokerConfig:
    prefix: str = "celery_"
    static: dict[str, str] = field(default_factory=dict)
    queues: tuple[str, ...] = ()  # always reported, even when no binding names them
    scan: bool | None = None  # Redis: also look for queues without a binding (None: small DBs)
    exact: bool | None = None  # RabbitMQ: passive declare instead of the API's sample
    delayed: bool = False  # count tasks waiting for their ETA (a walk: opt-in)
    visibility_timeout: float = 3600.0


class BrokerCollector:
    """``collect()`` reads the broker now; ``health()`` says whether it answered."""

    def __init__(self, open_broker: Callable[[], Broker], config: BrokerConfig,
                 warn: Callable[[str], None] = lambda text: None) -> None:
        self.open_broker = open_broker
        self.c = config
        self.warn = warn
        self.lock = threading.Lock()
        self.broker: Broker | None = None
        self.last_error = ""

    def read(self) -> tuple[list[QueueInfo], dict[str, int] | None, dict[str, int] | None]:
        """(queues, unacked by queue or None, delayed by queue or None); raises CeleryToolError."""
        if self.broker is None:
            self.broker = self.open_broker()
        broker = self.broker
        infos = broker.queues(self.c.queues, scan=self.c.scan, exact=self.c.exact)
        unacked = None
        if any(q.unacked is None for q in infos):
            counts = getattr(broker.ops(), "unacked_counts", None)  # Redis: kombu's unacked hash
            unacked = counts() if counts else None
        delayed = self._delayed(broker) if self.c.delayed else None
        for text in broker.warnings:
            self.warn(text)
        broker.warnings.clear()
        return infos, unacked, delayed

    def _delayed(self, broker: Broker) -> dict[str, int]:
        from celerytool.selection import Selection

        out: dict[str, int] = {}
        for task in broker.ops().delayed(None, Selection(), self.c.visibility_timeout):
            queue = task.queue or ""
            out[queue] = out.get(queue, 0) + 1
        return out

    def _drop(self) -> None:
        broker, self.broker = self.broker, None
        if broker is not None:
            try:
                broker.close()
            except Exception:
                pass

    def health(self) -> tuple[bool, str]:
        with self.lock:
            try:
                if self.broker is None:
                    self.broker = self.open_broker()
                self.broker.queues(self.c.queues, scan=False, exact=False)
            except CeleryToolError as exc:
                self._drop()
                return False, exc.message
            return True, "ok"

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        p, names, values = self.c.prefix, list(self.c.static), list(self.c.static.values())
        started = time.monotonic()
        with self.lock:
            try:
                infos, unacked, delayed = self.read()
                up = 1
            except CeleryToolError as exc:
                self._drop()
                if exc.message != self.last_error:
                    self.warn(f"broker unreachable: {exc.message}")
                self.last_error = exc.message
                infos, unacked, delayed, up = [], None, None, 0
            else:
                self.last_error = ""
        fam = GaugeMetricFamily(f"{p}broker_up", "1 when the broker answered this scrape, else 0.",
                                labels=names)
        fam.add_metric(values, up)
        yield fam
        budget = LabelBudget(MAX_QUEUE_SERIES)
        infos = [q for q in infos if budget(q.name) == q.name]
        labels = ["queue_name", *names]
        length = GaugeMetricFamily(f"{p}queue_length", "Messages ready in the queue (Redis: every "
                                   "priority list summed).", labels=labels)
        by_priority = GaugeMetricFamily(f"{p}queue_length_by_priority", "Messages ready in the "
                                        "queue, by priority bucket (Redis priority lists).",
                                        labels=["queue_name", "priority", *names])
        acked = GaugeMetricFamily(f"{p}queue_unacked", "Messages delivered to a consumer and not "
                                  "yet acknowledged (Redis: kombu's unacked hash by queue).", labels=labels)
        consumers = GaugeMetricFamily(f"{p}queue_consumers", "Consumers of the queue "
                                      "(RabbitMQ).", labels=labels)
        for q in infos:
            length.add_metric([q.name, *values], q.messages)
            for bucket, n in sorted(q.priorities.items(), key=lambda kv: int(kv[0])):
                by_priority.add_metric([q.name, str(bucket), *values], n)
            n_unacked = q.unacked if q.unacked is not None else (
                None if unacked is None else unacked.get(q.name, 0))
            if n_unacked is not None:
                acked.add_metric([q.name, *values], n_unacked)
            if q.consumers is not None:
                consumers.add_metric([q.name, *values], q.consumers)
        yield length
        yield by_priority
        if unacked is not None or any(q.unacked is not None for q in infos):
            yield acked
        if any(q.consumers is not None for q in infos):
            yield consumers
        if any(q.head_timestamp is not None for q in infos):
            fam = GaugeMetricFamily(f"{p}queue_oldest_message_age_seconds", "Age of the queue's first "
                                    "message, from its AMQP timestamp (RabbitMQ's head_message_timestamp: "
                                    "only where publishers set it; Celery does not).", labels=labels)
            now = time.time()
            for q in infos:
                if q.head_timestamp is not None:
                    fam.add_metric([q.name, *values], max(0.0, now - q.head_timestamp))
            yield fam
        if delayed is not None:
            fam = GaugeMetricFamily(f"{p}queue_delayed", "Tasks waiting for their ETA / countdown.",
                                    labels=labels)
            for name in sorted(set(delayed) | {q.name for q in infos}):
                fam.add_metric([name, *values], delayed.get(name, 0))
            yield fam
        fam = GaugeMetricFamily("celerytool_scrape_duration_seconds", "Seconds this scrape spent "
                                "reading the broker.", labels=names)
        fam.add_metric(values, time.monotonic() - started)
        yield fam
