"""Tables for people: the columns of each kind of record, streamed in chunks that fit the terminal.

Rows are written in chunks of at most ``CHUNK`` (or whatever arrived within
``CHUNK_SECONDS``), each laid out on its own and headed by the column names:
memory stays flat however many rows come, and the first rows show at once.
Every row is one line of at most the terminal's width (``COLUMNS``, else the
terminal, else 200): ids are shortened as git shortens hashes (``--full-ids``
shows them whole), low-value columns go first, then long values are cut with
"…", then more columns go.  No line ends in spaces.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from celerytool.jsontext import short_repr
from celerytool.render.layout import (
    GAP,
    SGR,
    STATUS_SGR,
    Spec,
    cell,
    cell_len,
    colours,
    cut,
    fit,
    isatty,
    short_ids,
)

if TYPE_CHECKING:
    from celerytool.model import Message, QueueInfo, TaskResult

CHUNK = 1000
CHUNK_SECONDS = 1.0
DEFAULT_WIDTH = 200


@dataclass(frozen=True)
class Column:
    name: str
    get: Callable[[Any], Any]
    right: bool = False
    cut_to: int = 0  # minimum width when long values are cut; 0: never cut
    cut_first: bool = False  # a value column (args, result): cut before the name columns
    widest: int = 0  # the most it asks for (0: as wide as its widest cell)
    style: str = ""  # "bold", "red", "status" (colour by task state) on a terminal
    is_id: bool = False  # shortened like git hashes unless --full-ids
    hide_empty: bool = False  # left out of a chunk where it is empty in every row


@dataclass(frozen=True)
class Kind:
    columns: tuple[Column, ...]
    low_value: tuple[str, ...] = ()  # dropped first, before any value is cut
    then_drop: tuple[str, ...] = ()  # dropped when cutting every value is not enough


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _online(q: QueueInfo) -> str:
    """A quorum queue's members that answer, then how many of how many (``n1 n3 (2/3)``)."""
    if not q.members:
        return ""
    return f"{' '.join(q.online)} ({len(q.online)}/{len(q.members)})"


def _prio(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in counts.items() if v) or "-"


def _when(text: object) -> str:
    """'2026-11-23T10:08:15.823034+00:00' -> '2026-11-23T10:08:15Z'; other offsets as stored."""
    if not text:
        return ""
    text = str(text)
    if text.endswith("+00:00") and len(text) >= 19:
        return text[:19] + "Z"
    return text


def _short_date(text: str | None) -> str:
    # '2026-11-23T10:08:15.823034+00:00' -> '2026-11-23 10:08:15' (Celery stores UTC)
    if not text:
        return ""
    return text[:19].replace("T", " ") if text.endswith(("+00:00", "Z")) else text


def _age(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):  # an age from a score of inf (hostile)
        return ""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _outcome(r: TaskResult) -> str:
    if r.exception:
        return f"{r.exception.get('type')}: {r.exception.get('message')}"
    if r.error:
        return f"undecodable: {r.error}"
    if r.status == "PENDING" and r.result is None:  # nothing stored yet: no value to show
        return ""
    return short_repr(r.result, 200)


def _seconds_until(iso: str | None) -> float | None:
    import datetime as dt

    if not iso:
        return None
    try:
        return (dt.datetime.fromisoformat(iso) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    except ValueError:
        return None


def _left(seconds: float | None) -> str:
    """Time until due: '4m05s', '2h03m', 'overdue 12s'."""
    if seconds is None:
        return "?"
    text = _age(abs(seconds)) if abs(seconds) >= 60 else f"{abs(seconds):.0f}s"
    return f"overdue {text}" if seconds < 0 else text


def _death(x_death: dict[str, Any] | None) -> str:
    """RabbitMQ's x-death, in words: 'rejected from q1 x3' (the latest entry; +N for earlier ones)."""
    if not x_death:
        return ""
    text = f"{x_death.get('reason')} from {x_death.get('queue')}"
    if (x_death.get("count") or 0) > 1:
        text += f" x{x_death['count']}"
    more = len(x_death.get("history") or ()) - 1
    return text + (f" +{more}" if more > 0 else "")


def _tasks(g: Any) -> str:
    """The task names of a failure group: the most frequent first, "+N" for those not kept."""
    names = sorted(g.tasks, key=lambda t: (-g.tasks[t], t))
    more = len(names) - 2 + g.tasks_more
    return ", ".join(names[:2]) + (f" +{more}" if more > 0 else "")


def _deliveries(extra: dict[str, Any]) -> str:
    """A RabbitMQ quorum queue message's delivery count / the queue's limit, as read by peek."""
    if "delivery_count" not in extra:
        return ""
    limit = extra.get("delivery_limit")
    text = f"{extra['delivery_count']}/{'-' if limit is None else limit}"
    return text + " to tail" if extra.get("requeued_at_tail") else text


def _decoded(m: Message, value: Any, stored: int) -> str:
    """args / kwargs in one line; as stored when the fast decoder kept plain JSON text of it."""
    if m.error is not None:
        return ""
    texts = m.json_texts
    if texts is not None:
        text = texts[stored]
        if text.isascii() and "\\" not in text and "\n" not in text:
            return text if len(text) <= 200 else text[:199] + "…"
    return short_repr(value, 200, spaced=True)  # the same text as the stored JSON's


KINDS: dict[str, Kind] = {
    "queue": Kind((
        Column("queue", lambda q: q.name, cut_to=12, style="bold"),
        Column("messages", lambda q: q.messages, right=True),
        Column("by priority", lambda q: _prio(q.priorities) if q.priorities else "", cut_to=11, cut_first=True,
               hide_empty=True),
        Column("unacked", lambda q: _opt(q.unacked), right=True, hide_empty=True),
        Column("delayed", lambda q: str(q.delayed) if q.delayed else "", right=True, hide_empty=True),
        Column("consumers", lambda q: _opt(q.consumers), right=True, hide_empty=True),
        Column("type", lambda q: _opt(q.type), hide_empty=True),
        Column("leader", lambda q: _opt(q.leader), cut_to=8, hide_empty=True),
        Column("online", lambda q: _online(q), cut_to=8, cut_first=True, hide_empty=True),
        Column("paused", lambda q: "paused" if q.paused else "", hide_empty=True),
    ), low_value=("type", "consumers")),
    "binding": Kind((
        Column("exchange", lambda b: b.exchange or '""', cut_to=10),
        Column("routing key", lambda b: b.routing_key, cut_to=11),
        Column("pattern", lambda b: b.pattern, cut_to=7, cut_first=True),
        Column("queue", lambda b: b.queue, cut_to=10, style="bold"),
    ), then_drop=("pattern",)),
    "message": Kind((
        Column("#", lambda m: _opt(m.position), right=True),
        Column("prio", lambda m: _opt(m.priority), right=True),
        Column("id", lambda m: _opt(m.id), is_id=True),
        Column("task", lambda m: _opt(m.task), cut_to=16, style="bold"),
        Column("args", lambda m: _decoded(m, m.args, 0), cut_to=10, cut_first=True, widest=60),
        Column("kwargs", lambda m: _decoded(m, m.kwargs, 1), cut_to=10, cut_first=True, widest=60),
        Column("eta", lambda m: _when(m.eta), hide_empty=True),
        Column("expires", lambda m: _when(m.expires), hide_empty=True),
        Column("retries", lambda m: _opt(m.retries), right=True),
        Column("deliveries", lambda m: _deliveries(m.extra), right=True, hide_empty=True),
        Column("dead-lettered", lambda m: _death(m.extra.get("x_death")), cut_to=12, hide_empty=True),
        Column("error", lambda m: _opt(m.error), cut_to=16, cut_first=True, style="red", hide_empty=True),
    ), low_value=("expires", "retries", "prio"), then_drop=("kwargs", "eta", "#", "args")),
    "unacked": Kind((
        Column("queue", lambda m: _opt(m.queue), cut_to=8),
        Column("delivered", lambda m: _when(m.extra.get("delivered_at"))),
        Column("age", lambda m: _age(m.extra.get("age")), right=True),
        Column("id", lambda m: _opt(m.id), is_id=True),
        Column("task", lambda m: _opt(m.task), cut_to=16, style="bold"),
        Column("args", lambda m: _decoded(m, m.args, 0), cut_to=10, cut_first=True, widest=60),
        Column("eta", lambda m: _when(m.eta), hide_empty=True),
        Column("error", lambda m: _opt(m.error), cut_to=16, cut_first=True, style="red", hide_empty=True),
    ), low_value=("delivered",), then_drop=("eta", "args", "queue")),
    "result": Kind((
        Column("id", lambda r: r.id, is_id=True),
        Column("status", lambda r: r.status, style="status"),
        Column("task", lambda r: r.name or "", cut_to=16, style="bold"),
        Column("done (UTC)", lambda r: _short_date(r.date_done)),
        Column("worker", lambda r: r.worker or "", cut_to=10),
        Column("result", _outcome, cut_to=16, cut_first=True),
    ), low_value=("worker",), then_drop=("done (UTC)", "task")),
    "failure-group": Kind((
        Column("count", lambda g: g.count, right=True, style="bold"),
        Column("exception", lambda g: _opt(g.key.get("exception")), cut_to=12, hide_empty=True, style="red"),
        Column("message", lambda g: g.message, cut_to=16, cut_first=True, hide_empty=True),
        Column("task", lambda g: _opt(g.key.get("task")) if "task" in g.key else _tasks(g), cut_to=12,
               hide_empty=True),
        Column("worker", lambda g: _opt(g.key.get("worker")), cut_to=10, hide_empty=True),
        Column("queue", lambda g: _opt(g.key.get("queue")), cut_to=8, hide_empty=True),
        Column("first (UTC)", lambda g: _short_date(g.first)),
        Column("last (UTC)", lambda g: _short_date(g.last)),
        Column("example", lambda g: g.example_id, is_id=True),
        Column("last traceback line", lambda g: g.last_traceback, cut_to=16, cut_first=True, hide_empty=True),
    ), low_value=("last traceback line", "first (UTC)"), then_drop=("example", "worker", "queue")),
    "delayed": Kind((
        Column("due (UTC)", lambda d: _short_date(d.due) or "?"),
        Column("in", lambda d: _left(d.left), right=True),
        Column("id", lambda d: _opt(d.id), is_id=True),
        Column("task", lambda d: _opt(d.task), cut_to=16, style="bold"),
        Column("queue", lambda d: _opt(d.queue), cut_to=8),
        Column("waits in", lambda d: d.waits_in + (" (delivered again)" if d.delivered_again else ""),
               cut_to=8),
        Column("args", lambda d: short_repr(d.args, 200, spaced=True), cut_to=8, cut_first=True),
    ), then_drop=("args", "queue")),
    "beat": Kind((
        Column("name", lambda e: e.name, cut_to=12, style="bold"),
        Column("task", lambda e: _opt(e.task), cut_to=12),
        Column("schedule", lambda e: e.schedule, cut_to=12),
        Column("next due (UTC)", lambda e: _short_date(e.next_due) or (e.note or "?")),
        Column("in", lambda e: _left(_seconds_until(e.next_due)) if e.next_due else "", right=True),
        Column("last run (UTC)", lambda e: _short_date(e.last_run_at) or "", hide_empty=True),
        Column("runs", lambda e: _opt(e.total_run_count), right=True, hide_empty=True),
        Column("enabled", lambda e: "" if e.enabled is None else ("yes" if e.enabled else "NO"), hide_empty=True),
        Column("args", lambda e: " ".join(short_repr(v, 200, spaced=True) for v in (e.args, e.kwargs) if v),
               cut_to=8, cut_first=True, hide_empty=True),
        Column("queue", lambda e: _opt(e.options.get("queue")), cut_to=6, hide_empty=True),
    ), low_value=("runs", "last run (UTC)"), then_drop=("args", "queue")),
    "retry": Kind((
        Column("id", lambda p: p.old_id, is_id=True),
        Column("new id", lambda p: p.new_id or "(new)", is_id=True),
        Column("task", lambda p: p.task, cut_to=16, style="bold"),
        Column("queue", lambda p: _opt(p.queue), cut_to=8),
        Column("exception", lambda p: _opt(p.exception), cut_to=10, hide_empty=True),
        Column("args", lambda p: short_repr(list(p.args), 200, spaced=True), cut_to=8, cut_first=True),
        Column("kwargs", lambda p: short_repr(p.kwargs, 200, spaced=True), cut_to=8, cut_first=True,
               hide_empty=True),
    ), low_value=("exception",), then_drop=("kwargs", "queue")),
    "profile": Kind((
        Column("profile", lambda p: p["name"] + (" *" if p["active"] else ""), cut_to=10, style="bold"),
        Column("broker", lambda p: _opt(p["settings"].get("broker")), cut_to=20, cut_first=True),
        Column("other settings", lambda p: ", ".join(f"{k}={v}" for k, v in p["settings"].items()
                                                     if k != "broker"), cut_to=16, cut_first=True),
    ), then_drop=("other settings",)),
    "setting": Kind((
        Column("setting", lambda s: s["setting"], style="bold"),
        Column("value", lambda s: _opt(s["value"]), cut_to=16, cut_first=True),
        Column("source", lambda s: s["source"], cut_to=14),
    )),
    # the live commands (workers, inspect, revoke)
    "worker": Kind((
        Column("worker", lambda w: w.name, cut_to=12, style="bold"),
        Column("status", lambda w: w.status),
        Column("queues", lambda w: ",".join(w.queues), cut_to=8, cut_first=True),
        Column("paused", lambda w: ",".join(w.paused), cut_to=6, cut_first=True, hide_empty=True),
        Column("pool", lambda w: _opt(w.pool)),
        Column("conc", lambda w: _opt(w.concurrency), right=True),
        Column("prefetch", lambda w: _opt(w.prefetch), right=True),
        Column("processed", lambda w: _opt(w.processed), right=True),
        Column("active", lambda w: _opt(w.active), right=True),
        Column("reserved", lambda w: _opt(w.reserved), right=True),
        Column("scheduled", lambda w: _opt(w.scheduled), right=True),
        Column("pid", lambda w: _opt(w.pid), right=True, hide_empty=True),
        Column("uptime", lambda w: _duration(w.uptime), right=True, hide_empty=True),
        Column("celery", lambda w: _opt(w.version), hide_empty=True),
    ), low_value=("pid", "celery", "prefetch"), then_drop=("uptime", "reserved", "scheduled", "pool")),
    "task": Kind((
        Column("worker", lambda t: t.worker, cut_to=10),
        Column("state", lambda t: t.state),
        Column("id", lambda t: _opt(t.id), is_id=True),
        Column("task", lambda t: _opt(t.task), cut_to=16, style="bold"),
        Column("args", lambda t: short_repr(t.args, 200, spaced=True), cut_to=10, cut_first=True, widest=60),
        Column("kwargs", lambda t: short_repr(t.kwargs, 200, spaced=True), cut_to=10, cut_first=True,
               widest=60),
        Column("eta", lambda t: _when(t.eta), hide_empty=True),
        Column("started", lambda t: _when(t.time_started), hide_empty=True),
        Column("queue", lambda t: _opt(t.queue), cut_to=8, hide_empty=True),
    ), low_value=("queue", "state"), then_drop=("kwargs", "started", "worker")),
    "revoke": Kind((
        Column("worker", lambda a: a.worker, cut_to=12, style="bold"),
        Column("ok", lambda a: "yes" if a.ok else "no"),
        Column("reply", lambda a: a.reply, cut_to=16, cut_first=True),
    )),
}


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return _age(s)


def census_kind(by: str) -> Kind:
    """``summary``'s table: the --by field's value, then the counts."""
    return Kind((
        Column(by, lambda r: "(none)" if r.value is None else str(r.value), cut_to=16, style="bold"),
        Column("count", lambda r: r.count, right=True),
        Column("bytes", lambda r: r.bytes, right=True),
        Column("oldest eta", lambda r: _when(r.oldest_eta), hide_empty=True),
        Column("newest eta", lambda r: _when(r.newest_eta), hide_empty=True),
        Column("retries", lambda r: r.retries, right=True),
    ), low_value=("newest eta",))


def write_census(rows: Sequence[Any], by: str, out: TextIO) -> None:
    from celerytool.render import survives_closed_pipe

    survives_closed_pipe(_write_census)(rows, by, out)


def _write_census(rows: Sequence[Any], by: str, out: TextIO) -> None:
    if rows:
        out.write(chunk_text(rows, census_kind(by), terminal_width(out), styled=colours(out)))
    out.flush()


def terminal_width(out: TextIO) -> int:
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if isatty(out):
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def write_table(records: Iterable[Any], kind: str, out: TextIO, *, full_ids: bool = False,
                width: int | None = None) -> int:
    """Write ``records`` as chunks of table rows; return how many rows were written."""
    spec = KINDS.get(kind)
    if spec is None:
        from celerytool.render.results import write_records

        return write_records(records, kind, out)
    width = width or terminal_width(out)
    styled = colours(out)
    count, started = 0, 0.0
    chunk: list[Any] = []
    for record in records:
        if not chunk:
            started = time.monotonic()
        chunk.append(record)
        if len(chunk) >= CHUNK or time.monotonic() - started >= CHUNK_SECONDS:
            out.write(chunk_text(chunk, spec, width, full_ids=full_ids, styled=styled))
            out.flush()
            count += len(chunk)
            chunk = []
    if chunk:
        out.write(chunk_text(chunk, spec, width, full_ids=full_ids, styled=styled))
        count += len(chunk)
    out.flush()
    return count


def chunk_text(rows: Sequence[Any], kind: Kind, width: int, *, full_ids: bool = False,
               styled: bool = False) -> str:
    """A header and one line per row, every line at most ``width`` cells, none ending in a space."""
    columns = list(kind.columns)
    cells = [[cell(col.get(r)) for r in rows] for col in columns]
    keep = [i for i, col in enumerate(columns) if not (col.hide_empty and not any(cells[i]))]
    columns, cells = [columns[i] for i in keep], [cells[i] for i in keep]
    for i, col in enumerate(columns):
        if col.is_id and not full_ids:
            n = short_ids(cells[i])
            cells[i] = [c[:n] for c in cells[i]]
    specs = [Spec(c.name, c.right, c.cut_to, c.cut_first, c.widest) for c in columns]
    layout = fit(specs, cells, width, kind.low_value, kind.then_drop)
    lines = [_line([(cut(columns[i].name, w), w, columns[i].right, "head") for i, w in layout], styled)]
    for r in range(len(rows)):
        lines.append(_line([(cut(cells[i][r], w), w, columns[i].right, _style(columns[i], cells[i][r]))
                            for i, w in layout], styled))
    return "".join(line + "\n" for line in lines)


def _style(col: Column, text: str) -> str:
    if col.style == "status":
        return STATUS_SGR.get(text, "")
    return SGR.get(col.style, "")


def _line(parts: list[tuple[str, int, bool, str]], styled: bool) -> str:
    out = []
    last = len(parts) - 1
    for n, (shown, w, right, style) in enumerate(parts):  # each text already cut to its width
        fill = " " * (w - cell_len(shown))
        code = SGR.get(style, style) if styled else ""
        body = f"\x1b[{code}m{shown}\x1b[0m" if code and shown else shown
        if right:
            out.append(fill + body)
        else:
            out.append(body if n == last else body + fill)
    return (" " * GAP).join(out).rstrip(" ")


__all__ = ["CHUNK", "KINDS", "chunk_text", "write_table"]
