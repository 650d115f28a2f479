"""Rich tables for each kind of record; the column choices live here."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from celerytool.jsonable import short_repr

Column = tuple[str, Callable[[Any], Any], dict[str, Any]]


def _prio(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in counts.items() if v) or "-"


def _opt(value: Any) -> str:
    return "" if value is None else str(value)


COLUMNS: dict[str, list[Column]] = {
    "queue": [
        ("queue", lambda q: q.name, {"style": "bold"}),
        ("messages", lambda q: q.messages, {"justify": "right"}),
        ("by priority", lambda q: _prio(q.priorities) if q.priorities else "", {}),
        ("unacked", lambda q: _opt(q.unacked), {"justify": "right"}),
        ("consumers", lambda q: _opt(q.consumers), {"justify": "right"}),
        ("type", lambda q: _opt(q.type), {}),
    ],
    "binding": [
        ("exchange", lambda b: b.exchange or '""', {}),
        ("routing key", lambda b: b.routing_key, {}),
        ("pattern", lambda b: b.pattern, {}),
        ("queue", lambda b: b.queue, {"style": "bold"}),
    ],
    "message": [
        ("#", lambda m: _opt(m.position), {"justify": "right"}),
        ("prio", lambda m: _opt(m.priority), {"justify": "right"}),
        ("id", lambda m: _opt(m.id), {"no_wrap": True}),
        ("task", lambda m: _opt(m.task), {"style": "bold"}),
        ("args", lambda m: short_repr(m.args, 60) if m.error is None else "", {}),
        ("kwargs", lambda m: short_repr(m.kwargs, 60) if m.error is None else "", {}),
        ("eta", lambda m: _opt(m.eta), {}),
        ("expires", lambda m: _opt(m.expires), {}),
        ("retries", lambda m: _opt(m.retries), {"justify": "right"}),
        ("error", lambda m: _opt(m.error), {"style": "red"}),
    ],
    "unacked": [
        ("queue", lambda m: _opt(m.queue), {}),
        ("delivered", lambda m: _opt(m.extra.get("delivered_at")), {}),
        ("age", lambda m: _age(m.extra.get("age")), {"justify": "right"}),
        ("id", lambda m: _opt(m.id), {"no_wrap": True}),
        ("task", lambda m: _opt(m.task), {"style": "bold"}),
        ("args", lambda m: short_repr(m.args, 40) if m.error is None else "", {}),
        ("eta", lambda m: _opt(m.eta), {}),
        ("error", lambda m: _opt(m.error), {"style": "red"}),
    ],
}


def _age(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _drop_empty(columns: list[Column], rows: Sequence[Any]) -> list[tuple[Column, list[str]]]:
    out = []
    for col in columns:
        cells = [str(col[1](r)) for r in rows]
        if col[0] in ("unacked", "consumers", "type", "error", "eta", "expires", "by priority") and not any(cells):
            continue
        out.append((col, cells))
    return out


def render_table(rows: Sequence[Any], kind: str, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, width=None if out.isatty() else int(os.environ.get("COLUMNS", "200")))
    columns = COLUMNS.get(kind)
    if columns is None:  # a record kind with no table of its own: key / value
        table = Table(show_header=False, box=None)
        for r in rows:
            data = r.to_json() if hasattr(r, "to_json") else r
            for k, v in data.items():
                table.add_row(Text(k), Text(v if isinstance(v, str) else short_repr(v, 200)))
        console.print(table)
        return
    if not rows:
        return
    kept = _drop_empty(columns, rows)
    table = Table(box=None, pad_edge=False, header_style="bold dim")
    for (name, _, style), _cells in kept:
        table.add_column(name, overflow="fold", **style)
    for i in range(len(rows)):
        table.add_row(*(Text(cells[i]) for _, cells in kept))
    console.print(table)
