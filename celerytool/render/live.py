"""Tables and lines for the live commands: workers, inspect, revoke, events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from celerytool.jsonable import short_repr


def _opt(value: Any) -> str:
    return "" if value is None else str(value)


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


LIVE_COLUMNS: dict[str, list[tuple[str, Any, dict[str, Any]]]] = {
    "worker": [
        ("worker", lambda w: w.name, {"style": "bold", "no_wrap": True}),
        ("status", lambda w: w.status, {}),
        ("queues", lambda w: ",".join(w.queues), {}),
        ("pool", lambda w: _opt(w.pool), {}),
        ("conc", lambda w: _opt(w.concurrency), {"justify": "right"}),
        ("prefetch", lambda w: _opt(w.prefetch), {"justify": "right"}),
        ("processed", lambda w: _opt(w.processed), {"justify": "right"}),
        ("active", lambda w: _opt(w.active), {"justify": "right"}),
        ("reserved", lambda w: _opt(w.reserved), {"justify": "right"}),
        ("scheduled", lambda w: _opt(w.scheduled), {"justify": "right"}),
        ("pid", lambda w: _opt(w.pid), {"justify": "right"}),
        ("uptime", lambda w: duration(w.uptime), {"justify": "right"}),
        ("celery", lambda w: _opt(w.version), {}),
    ],
    "task": [
        ("worker", lambda t: t.worker, {"no_wrap": True}),
        ("state", lambda t: t.state, {}),
        ("id", lambda t: _opt(t.id), {"no_wrap": True}),
        ("task", lambda t: _opt(t.task), {"style": "bold"}),
        ("args", lambda t: short_repr(t.args, 60), {}),
        ("kwargs", lambda t: short_repr(t.kwargs, 60), {}),
        ("eta", lambda t: _opt(t.eta), {}),
        ("started", lambda t: _opt(t.time_started), {}),
        ("queue", lambda t: _opt(t.queue), {}),
    ],
    "revoke": [
        ("worker", lambda a: a.worker, {"no_wrap": True}),
        ("ok", lambda a: "yes" if a.ok else "no", {}),
        ("reply", lambda a: a.reply, {}),
    ],
}
OPTIONAL_COLUMNS = {"eta", "started", "queue", "celery", "prefetch", "pid", "uptime"}


def render_values(rows: Sequence[Any], out: TextIO) -> None:
    """WorkerValue rows: one table when every value is flat (registered, revoked,
    active-queues), else a key / value block per worker (stats, conf)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width = None if out.isatty() else 200
    console = Console(file=out, width=width)
    data = [r.to_json() if hasattr(r, "to_json") else r for r in rows]
    flat = all(not isinstance(v, (dict, list)) for d in data for v in d.values())
    if flat:
        keys = list(dict.fromkeys(k for d in data for k in d))
        table = Table(box=None, pad_edge=False, header_style="bold dim")
        for k in keys:
            table.add_column(k, overflow="fold")
        for d in data:
            table.add_row(*(Text(_opt(d.get(k))) for k in keys))
        console.print(table)
        return
    for d in data:
        table = Table(show_header=False, box=None, title=d.get("worker"), title_justify="left",
                      title_style="bold")
        for k, v in d.items():
            if k != "worker":
                table.add_row(Text(k), Text(v if isinstance(v, str) else short_repr(v, 200)))
        console.print(table)


# -- events ----------------------------------------------------------------------------
def event_line(event: dict[str, Any]) -> str:
    """One readable line for a terminal."""
    from datetime import datetime

    ts = event.get("timestamp")
    when = datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3] if isinstance(ts, (int, float)) else "--"
    kind = str(event.get("type", "?"))
    host = event.get("hostname") or ""
    if kind.startswith("task-"):
        name = event.get("name") or ""
        detail = ""
        if kind == "task-failed":
            detail = f" {event.get('exception', '')}"
        elif kind == "task-succeeded":
            runtime = event.get("runtime")
            detail = f" in {runtime:.3f}s" if isinstance(runtime, (int, float)) else ""
        elif kind in ("task-received", "task-sent"):
            detail = f" args={event.get('args', '')} kwargs={event.get('kwargs', '')}"
        elif kind == "task-retried":
            detail = f" {event.get('exception', '')}"
        elif kind == "task-revoked":
            detail = " terminated" if event.get("terminated") else ""
        return f"{when} {kind:<15} {event.get('uuid', '')} {name}{detail} [{host}]".rstrip()
    return f"{when} {kind:<15} {host}"


class EventWriter:
    """Events to ``out`` as they come: NDJSON lines, a JSON array, or readable lines."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.fmt, self.out = fmt, out
        self.count = 0
        if fmt == "json":
            out.write("[")

    def write(self, event: dict[str, Any]) -> None:
        from celerytool import json_records as jsonio

        if self.fmt == "ndjson":
            self.out.write(jsonio.dumps(event) + "\n")
        elif self.fmt == "json":
            self.out.write(("\n" if self.count == 0 else ",\n") + jsonio.dumps(event))
        else:
            self.out.write(event_line(event) + "\n")
        self.count += 1

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "]\n")
        self.out.flush()
