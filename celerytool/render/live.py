"""Tables and lines for the live commands: workers, inspect, revoke, events."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TextIO

from celerytool.render.escape import printable


def write_live(records: Iterable[Any], kind: str, out: TextIO) -> int:
    """Tables of the kinds that have no fixed columns: ``worker-value`` and ``top``."""
    rows = list(records)
    if kind == "top":
        from rich.console import Console

        from celerytool.render.table import terminal_width
        from celerytool.render.top import screen

        width = terminal_width(out)  # COLUMNS, else the terminal, else 200
        for snap in rows:
            console = Console(width=width, color_system=None if not out.isatty() else "auto",
                              force_terminal=out.isatty())
            with console.capture() as captured:
                console.print(screen(snap, hint="", listening=False))
            out.write("".join(line.rstrip(" ") + "\n" for line in captured.get().splitlines()))
        out.flush()
        return len(rows)
    return write_values(rows, out)


def write_values(rows: list[Any], out: TextIO) -> int:
    """WorkerValue rows: one table when every value is flat (registered, revoked,
    active-queues), else key / value lines per worker (stats, conf)."""
    from celerytool.render.layout import colours
    from celerytool.render.table import Column, Kind, chunk_text, terminal_width

    data = [r.to_json() if hasattr(r, "to_json") else r for r in rows]
    if not data:
        return 0
    if all(not isinstance(v, (dict, list)) for d in data for v in d.values()):
        keys = list(dict.fromkeys(k for d in data for k in d))
        kind = Kind(tuple(Column(printable(k), _cell(k), cut_to=8, cut_first=k not in ("worker", "id", "task"))
                          for k in keys))
        out.write(chunk_text(data, kind, terminal_width(out), full_ids=True, styled=colours(out)))
        out.flush()
        return len(data)
    from celerytool.render.results import write_records

    return write_records(data, "worker-value", out)


# -- events ----------------------------------------------------------------------------
def event_line(event: dict[str, Any]) -> str:
    """One readable line for a terminal (control characters escaped)."""
    return printable(_event_line(event))


def _event_line(event: dict[str, Any]) -> str:
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
        from celerytool import jsontext as jsonio

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


def _cell(key: str) -> Callable[[dict[str, Any]], str]:
    """A row's value of ``key`` as text (empty when missing or null)."""
    return lambda d: "" if d.get(key) is None else str(d[key])
