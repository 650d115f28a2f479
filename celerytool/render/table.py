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
        if col[0] in ("unacked", "consumers", "type", "error", "eta", "expires", "by priority",
                      "oldest eta", "newest eta") and not any(cells):
            continue
        out.append((col, cells))
    return out


def render_table(rows: Sequence[Any], kind: str, out: TextIO) -> None:
    if kind == "result":
        from celerytool.render.results import render_results

        render_results(rows, out)
        return
    render_columns(rows, COLUMNS.get(kind), out)


def census_columns(by: str) -> list[Column]:
    """``summary``'s table: the --by field's value, then the counts."""
    return [
        (by, lambda r: "(none)" if r.value is None else str(r.value), {"style": "bold"}),
        ("count", lambda r: r.count, {"justify": "right"}),
        ("bytes", lambda r: r.bytes, {"justify": "right"}),
        ("oldest eta", lambda r: _opt(r.oldest_eta), {}),
        ("newest eta", lambda r: _opt(r.newest_eta), {}),
        ("retries", lambda r: r.retries, {"justify": "right"}),
    ]


def render_columns(rows: Sequence[Any], columns: list[Column] | None, out: TextIO) -> None:
    width = None if out.isatty() else int(os.environ.get("COLUMNS", "200"))
    if columns is not None and not rows:
        return
    kept = _drop_empty(columns, rows) if columns is not None else []
    if kept and width is not None and _plain_output():
        lines = plain_lines(kept, len(rows), width)
        if lines is not None:  # what rich would print, without importing it (~30 ms)
            out.write("".join(line + "\n" for line in lines))
            return

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, width=width)
    if columns is None:  # a record kind with no table of its own: key / value
        table = Table(show_header=False, box=None)
        for r in rows:
            data = r.to_json() if hasattr(r, "to_json") else r
            for k, v in data.items():
                table.add_row(Text(k), Text(v if isinstance(v, str) else short_repr(v, 200)))
        console.print(table)
        return
    table = Table(box=None, pad_edge=False, header_style="bold dim")
    for (name, _, style), _cells in kept:
        table.add_column(name, overflow="fold", **style)
    for i in range(len(rows)):
        table.add_row(*(Text(cells[i]) for _, cells in kept))
    console.print(table)


def _plain_output() -> bool:
    """Whether rich would write plain text (no colours) to a stream that is not a terminal."""
    return "FORCE_COLOR" not in os.environ and os.environ.get("TTY_COMPATIBLE") != "1"


def plain_lines(kept: list[tuple[Column, list[str]]], count: int, width: int) -> list[str] | None:
    """The lines rich prints for this table when nothing needs wrapping; else None.

    That case is common and simple: printable ASCII cells whose widest
    values fit ``width``; columns two spaces apart, each as wide as its
    widest cell or header, justified as the column says.
    """
    if not all(cell.isascii() and cell.isprintable() for _, cells in kept for cell in cells):
        return None
    heads = [col[0] for col, _ in kept]
    widths = [max(len(head), *map(len, cells)) for head, (_, cells) in zip(heads, kept, strict=True)]
    if sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    right = [col[2].get("justify") == "right" for col, _ in kept]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True))

    return [line(heads)] + [line([cells[i] for _, cells in kept]) for i in range(count)]
