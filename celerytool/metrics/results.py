"""Result-backend metrics (``metrics --backend``): results stored, and those stored without a TTL.

Redis: a database of at most ``EXACT_MAX_KEYS`` keys is walked whole at each scrape (SCAN
and pipelined PTTL, as ``doctor`` classes keys); a larger one is sampled with ``RANDOMKEY``
(``SAMPLE`` keys) and the counts are estimates, which ``celery_results_sampled 1`` says.
SQL: ``count(*)`` of the task table; database rows have no TTL, so no ``without_ttl`` there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

from celerytool.errors import CeleryToolError

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from celerytool.backends.query import ResultBackend
    from celerytool.backends.redis import RedisResultBackend
    from celerytool.backends.sql import SqlResultBackend
    from celerytool.clients.resp import RespClient

EXACT_MAX_KEYS = 200_000
SAMPLE = 2_000
SCAN_COUNT = 1_000


def redis_counts(backend: RedisResultBackend, exact_max: int = EXACT_MAX_KEYS, sample: int = SAMPLE) -> tuple[int, int, bool]:
    """(stored, without a TTL, sampled) of a Redis result backend."""
    from celerytool.backends.redis import TASK_PREFIX

    client, head = backend.client, (backend.prefix + TASK_PREFIX).encode()
    with backend.errors():
        size = int(client.execute("DBSIZE"))
        if size > exact_max:
            keys = [k for k in client.pipeline([("RANDOMKEY",)] * sample) if isinstance(k, bytes)]
            results = [k for k in keys if k.startswith(head)]
            ttls = client.pipeline([("PTTL", k) for k in results]) if results else []
            seen = max(len(keys), 1)
            stored = round(len(results) * size / seen)
            without = round(sum(1 for t in ttls if t == -1) * size / seen)
            return stored, without, True
        stored = without = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=_glob(head) + "*", count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                stored, without = _add(client, batch, stored, without)
                batch = []
        if batch:
            stored, without = _add(client, batch, stored, without)
        return stored, without, False


def _add(client: RespClient, keys: list[bytes], stored: int, without: int) -> tuple[int, int]:
    ttls = client.pipeline([("PTTL", k) for k in keys])
    return stored + sum(1 for t in ttls if t != -2), without + sum(1 for t in ttls if t == -1)


def _glob(prefix: bytes) -> str:
    text = prefix.decode(errors="replace")
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def sql_count(backend: SqlResultBackend) -> int:
    sa = backend.sa
    table = backend.table("task")
    with backend.errors():
        return int(backend.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


class ResultsCollector:
    def __init__(self, open_backend: Callable[[], ResultBackend], prefix: str, static: dict[str, str],
                 warn: Callable[[str], None]) -> None:
        self.open_backend = open_backend
        self.prefix, self.static, self.warn = prefix, static, warn
        self.lock = threading.Lock()
        self.backend: ResultBackend | None = None

    def read(self) -> tuple[int, int | None, bool]:
        if self.backend is None:
            self.backend = self.open_backend()
        if self.backend.kind == "redis":  # the kind names the class (backends.open_backend)
            return redis_counts(cast("RedisResultBackend", self.backend))
        return sql_count(cast("SqlResultBackend", self.backend)), None, False

    def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                pass

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        p, names, values = self.prefix, list(self.static), list(self.static.values())
        with self.lock:
            try:
                stored, without, sampled = self.read()
                up = 1
            except CeleryToolError as exc:
                self.close()
                self.warn(f"result backend unreachable: {exc.message}")
                stored, without, sampled, up = None, None, False, 0
        fam = GaugeMetricFamily(f"{p}results_backend_up", "1 when the result backend answered this "
                                "scrape, else 0.", labels=names)
        fam.add_metric(values, up)
        yield fam
        if stored is None:
            return
        for metric, text, n in (
                ("results_stored", "Task results stored in the result backend.", stored),
                ("results_without_ttl", "Task results stored without a TTL (Redis: never expire).", without),
                ("results_sampled", "1 when the result counts are estimates from a sample of keys "
                                    "(Redis databases of more than 200,000 keys).", int(sampled))):
            if n is None:
                continue
            fam = GaugeMetricFamily(f"{p}{metric}", text, labels=names)
            fam.add_metric(values, n)
            yield fam
