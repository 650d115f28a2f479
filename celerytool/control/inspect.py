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
# what ``inspect registered`` asks of each task (Celery's default, plus the limits time-limit sets)
TASK_INFO = ["exchange", "routing_key", "rate_limit", "soft_time_limit", "time_limit"]
MIN_FOLLOW_UP = 0.5  # seconds granted to workers that answered the first call
# the type of each command's answer; an answer of another type is said on stderr and read as empty
SHAPES: dict[str, type] = {"active": list, "reserved": list, "scheduled": list, "revoked": list,
                           "registered": list, "active_queues": list, "stats": dict, "conf": dict,
                           "report": dict, "ping": dict}


def pool_name(implementation: Any) -> str | None:
    """``celery.concurrency.prefork:TaskPool`` -> ``prefork`` (``thread`` -> ``threads``)."""
    if not isinstance(implementation, str):
        return None
    module = implementation.split(":", 1)[0].rsplit(".", 1)[-1]
    return {"thread": "threads"}.get(module, module)


def _obj(value: Any) -> dict[str, Any]:
    """A reply part that should be an object; anything else (a hostile or broken worker) is empty."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def task_rows(worker: str, state: str, items: Any) -> Iterator[TaskRow]:
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        eta = priority = None
        if state == "scheduled":
            eta, priority = _text(item.get("eta")), _int(item.get("priority"))
            item = _obj(item.get("request"))
        delivery = _obj(item.get("delivery_info"))
        started = item.get("time_start")
        yield TaskRow(
            worker=worker, state=state, id=_text(item.get("id")), task=_text(item.get("name")),
            args=item.get("args"), kwargs=item.get("kwargs"), eta=eta,
            time_started=iso_time(started) if type(started) in (int, float) else None,
            queue=_text(delivery.get("routing_key")),
            priority=priority if priority is not None else _int(delivery.get("priority")),
            acknowledged=item.get("acknowledged") if isinstance(item.get("acknowledged"), bool) else None,
            worker_pid=_int(item.get("worker_pid")))


def inspect(session: ControlSession, what: str, destination: list[str] | None,
            timeout: float) -> tuple[list[TaskRow | WorkerValue], list[str]]:
    """Rows for ``inspect WHAT`` and the names of the workers that answered."""
    arguments = {"taskinfoitems": TASK_INFO} if what == "registered" else None
    replies = session.call(INSPECT[what], arguments, destination=destination, timeout=timeout,
                           limit=len(destination) if destination else None)
    said_wrong_shapes(session, INSPECT[what], replies)
    rows: list[TaskRow | WorkerValue] = []
    for worker in sorted(replies):
        reply = replies[worker]
        if what in TASK_LISTS:
            rows.extend(task_rows(worker, what, reply))
        elif what == "revoked":
            rows.extend(WorkerValue(worker, {"id": i}) for i in _list(reply) if isinstance(i, str))
        elif what == "registered":
            for entry in _list(reply):
                name, _, info = str(entry).partition(" [")
                rows.append(WorkerValue(worker, {"task": name, "info": info.rstrip("]") or None}))
        elif what == "active-queues":
            for q in map(_obj, _list(reply)):
                ex = _obj(q.get("exchange"))
                rows.append(WorkerValue(worker, {
                    "queue": _text(q.get("name")), "exchange": _text(ex.get("name")),
                    "exchange_type": _text(ex.get("type")), "routing_key": _text(q.get("routing_key"))}))
        else:
            rows.append(WorkerValue(worker, reply))
    return rows, sorted(replies)


def said_wrong_shapes(session: ControlSession, command: str, replies: dict[str, Any]) -> dict[str, Any]:
    """Each reply that is not of the type ``command`` answers with, said in the session's warnings."""
    want = SHAPES.get(command)
    if want is None:
        return replies
    for worker, reply in replies.items():
        if not isinstance(reply, want):
            what = "a list" if want is list else "an object"
            session.warnings.append(f"{worker} answered {command} with a {type(reply).__name__}, "
                                    f"not {what}: read as empty")
    return replies


def silent_after_pings(session: ControlSession, timeout: float, pings: int = 2) -> list[str]:
    """Workers bound to the control exchange that answered none of ``pings`` pings: dead ones
    whose binding stays (every later ``workers`` then waits out its timeout for them)."""
    answered: set[str] = set()
    for _ in range(pings):
        names, _spent = session.ping(timeout)
        answered.update(names)
        if set(session.expected or []) <= answered:
            break
    return silent_workers(session, sorted(answered))


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
        return said_wrong_shapes(session, command, session.call(command, destination=names, timeout=timeout,
                                                                limit=len(names)))

    stats = said_wrong_shapes(session, "stats", stats) if stats is not None else ask("stats")
    queues = ask("active_queues")
    counts = {state: ask(state) for state in TASK_LISTS}
    reports = ask("report")
    out = []
    for name in names:
        s = _obj(stats.get(name))
        pool = _obj(s.get("pool"))
        total = {k: v for k, v in _obj(s.get("total")).items() if type(v) is int}
        report = _obj(reports.get(name)).get("ok")
        version = re.search(r"celery:(\S+)", report) if isinstance(report, str) else None
        uptime = s.get("uptime")
        out.append(WorkerInfo(
            name=name, status="online",
            queues=[n for q in _list(queues.get(name)) if isinstance(n := _obj(q).get("name"), str)],
            pool=pool_name(pool.get("implementation")),
            # prefork: the processes it runs now (after pool grow/shrink or autoscaling); else the setting
            concurrency=len(procs) if isinstance(procs := pool.get("processes"), list) else _int(pool.get("max-concurrency")),
            prefetch=_int(s.get("prefetch_count")),
            processed=sum(total.values()) if total or "total" in s else None,
            active=_count(counts["active"].get(name)),
            reserved=_count(counts["reserved"].get(name)),
            scheduled=_count(counts["scheduled"].get(name)),
            pid=_int(s.get("pid")), uptime=uptime if type(uptime) in (int, float) else None,
            version=version.group(1) if version else None,
            processed_by_task=total))
    return out


def _count(reply: Any) -> int | None:
    return len(reply) if isinstance(reply, list) else None
