"""Tables for task results (one result in detail, with its traceback) and plain id lines."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from celerytool.jsonable import short_repr
from celerytool.render.escape import printable, printable_lines

_STYLE = {"SUCCESS": "green", "FAILURE": "red", "REVOKED": "red", "PENDING": "yellow",
          "STARTED": "cyan", "RETRY": "yellow"}


def emit_lines(lines: Iterable[str], out: TextIO) -> int:
    """One text line per record (e.g. task ids), streamed."""
    count = 0
    for line in lines:
        out.write(line + "\n")
        count += 1
    out.flush()
    return count


def _outcome(r: Any) -> str:
    if r.exception:
        e = r.exception
        return f"{e.get('type')}: {e.get('message')}"
    if r.error:
        return f"undecodable: {r.error}"
    return short_repr(r.result, 60)


def _short_date(text: str | None) -> str:
    # '2026-11-23T10:08:15.823034+00:00' -> '2026-11-23 10:08:15' (Celery stores UTC)
    if not text:
        return ""
    return text[:19].replace("T", " ") if text.endswith(("+00:00", "Z")) else text


def render_results(rows: Sequence[Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text as _Text

    def Text(text: str, **style: str) -> Any:  # noqa: N802 - every cell made here is escaped
        return _Text(printable(text), **style)

    console = Console(file=out, width=None if out.isatty() else int(os.environ.get("COLUMNS", "200")))
    if len(rows) == 1:
        r = rows[0]
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold dim")
        table.add_column(overflow="fold")
        table.add_row("id", Text(r.id))
        table.add_row("status", Text(r.status, style=_STYLE.get(r.status, "")))
        if r.exception:
            e = r.exception
            table.add_row("exception", Text(f"{e.get('module')}.{e.get('type')}: {e.get('message')}", style="red"))
        elif r.status != "PENDING" or r.result is not None:
            table.add_row("result", Text(short_repr(r.result, 2000)))
        for key in ("name", "args", "kwargs", "worker", "queue", "retries", "date_done",
                    "group_id", "parent_id"):
            value = getattr(r, key)
            if value is not None:
                table.add_row(key, Text(value if isinstance(value, str) else short_repr(value, 500)))
        if r.children:
            table.add_row("children", Text(short_repr(r.children, 500)))
        if r.error:
            table.add_row("error", Text(r.error, style="red"))
        console.print(table)
        if r.traceback:
            console.print(_Text(printable_lines(str(r.traceback).rstrip("\n")), style="dim"))
        return
    if not rows:
        return
    table = Table(box=None, pad_edge=False, header_style="bold dim")
    for name in ("id", "status", "task", "done (UTC)", "worker", "result"):
        table.add_column(name, overflow="fold", no_wrap=name in ("id", "status", "done (UTC)"))
    for r in rows:
        table.add_row(Text(r.id), Text(r.status, style=_STYLE.get(r.status, "")), Text(r.name or ""),
                      Text(_short_date(r.date_done)), Text(r.worker or ""), Text(_outcome(r)))
    console.print(table)
