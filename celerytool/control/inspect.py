"""``workers`` and ``inspect``: remote-control replies turned into records."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from celerytool.control.records import TaskRow, WorkerInfo, WorkerValue, iso_time
from celerytool.control.session import ControlSession

# what the CLI calls it -> Celery's remote-control command
INSPECT = {
    "active": "active",
    "reserved": "reserved",
    "scheduled": "scheduled",
    "revoked": "revoked",
    "registered": "registered",
    "stats": "stats",
    "conf": "conf",
    "active-queues": "active_queues",
}
TASK_LISTS = ("active", "reserved", "scheduled")
MIN_FOLLOW_UP = 0.5  # seconds granted to workers that answered the first call


def pool_name(implementation: Any) -> str | None:
    """``celery.concurrency.prefork:TaskPool`` -> ``prefork`` (``thread`` -> ``threads``)."""
    if not isinstance(implementation, str):
        return None
    module = implementation.split(":", 1)[0].rsplit(".", 1)[-1]
    return {"thread": "threads"}.get(module, module)


def task_rows(worker: str, state: str, items: Any) -> Iterator[TaskRow]:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        eta = priority = None
        if state == "scheduled":
            eta, priority = item.get("eta"), item.get("priority")
            item = item.get("request") or {}
        delivery = item.get("delivery_info") or {}
        yield TaskRow(
            worker=worker, state=state, id=item.get("id"), task=item.get("name"),
            args=item.get("args"), kwargs=item.get("kwargs"), eta=eta,
            time_started=iso_time(item.get("time_start")),
            queue=delivery.get("routing_key") if isinstance(delivery, dict) else None,
            priority=priority if priority is not None else (delivery.get("priority") if isinstance(delivery, dict) else None),
            acknowledged=item.get("acknowledged"), worker_pid=item.get("worker_pid"))


def inspect(session: ControlSession, what: str, destination: list[str] | None,
            timeout: float) -> tuple[list[Any], list[str]]:
    """Rows for ``inspect WHAT`` and the names of the workers that answered."""
    replies = session.call(INSPECT[what], destination=destination, timeout=timeout,
                           limit=len(destination) if destination else None)
    rows: list[Any] = []
    for worker in sorted(replies):
        reply = replies[worker]
        if what in TASK_LISTS:
            rows.extend(task_rows(worker, what, reply))
        elif what == "revoked":
            rows.extend(WorkerValue(worker, {"id": i}) for i in reply or [])
        elif what == "registered":
            for entry in reply or []:
                name, _, info = str(entry).partition(" [")
                rows.append(WorkerValue(worker, {"task": name, "info": info.rstrip("]") or None}))
        elif what == "active-queues":
            for q in reply or []:
                ex = q.get("exchange") or {}
                rows.append(WorkerValue(worker, {
                    "queue": q.get("name"), "exchange": ex.get("name"), "exchange_type": ex.get("type"),
                    "routing_key": q.get("routing_key")}))
        else:
            rows.append(WorkerValue(worker, reply))
    return rows, sorted(replies)


def silent_workers(session: ControlSession, answered: list[str]) -> list[str]:
    """Bound to the control exchange but did not answer: probably dead."""
    return sorted(set(session.expected or []) - set(answered))


def gather_workers(session: ControlSession, timeout: float,
                   wait_for: int | None = None) -> list[WorkerInfo]:
    """Every worker answering a ping, described; silent bound ones last (status ``silent``)."""
    start = time.monotonic()
    stats = None
    if wait_for is None:  # the stats reply doubles as the ping: one round trip less
        stats = session.call("stats", timeout=timeout)
        names = sorted(stats)
    else:
        names, _ = session.ping(timeout, wait_for)
    rows = describe(session, names, max(timeout - (time.monotonic() - start), MIN_FOLLOW_UP), stats)
    rows += [WorkerInfo(name=n, status="silent") for n in silent_workers(session, names)]
    return rows


def describe(session: ControlSession, names: list[str], timeout: float,
             stats: dict[str, Any] | None = None) -> list[WorkerInfo]:
    """stats (unless given), active_queues, task counts and version of workers known to be alive."""
    if not names:
        return []

    def ask(command: str) -> dict[str, Any]:
        return session.call(command, destination=names, timeout=timeout, limit=len(names))

    stats = stats if stats is not None else ask("stats")
    queues = ask("active_queues")
    counts = {state: ask(state) for state in TASK_LISTS}
    reports = ask("report")
    out = []
    for name in names:
        s = stats.get(name) or {}
        pool = s.get("pool") or {}
        total = s.get("total") or {}
        report = (reports.get(name) or {}).get("ok") if isinstance(reports.get(name), dict) else None
        version = re.search(r"celery:(\S+)", report) if isinstance(report, str) else None
        out.append(WorkerInfo(
            name=name, status="online",
            queues=[q.get("name") for q in queues.get(name) or [] if isinstance(q, dict)],
            pool=pool_name(pool.get("implementation")),
            concurrency=pool.get("max-concurrency"),
            prefetch=s.get("prefetch_count"),
            processed=sum(v for v in total.values() if isinstance(v, int)) if isinstance(total, dict) else None,
            active=_count(counts["active"].get(name)),
            reserved=_count(counts["reserved"].get(name)),
            scheduled=_count(counts["scheduled"].get(name)),
            pid=s.get("pid"), uptime=s.get("uptime"),
            version=version.group(1) if version else None,
            processed_by_task=dict(total) if isinstance(total, dict) else {}))
    return out


def _count(reply: Any) -> int | None:
    return len(reply) if isinstance(reply, list) else None
