"""The table form of ``doctor``'s report: classes, then findings with their fix."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol, TextIO


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def _utc(text: str | None) -> str:
    # '2026-11-23T10:08:15.823034+00:00' -> '2026-11-23 10:08:15Z' (Celery stores UTC)
    if not text:
        return ""
    return text[:19].replace("T", " ") + "Z" if text.endswith(("+00:00", "Z")) else text


class Report(Protocol):
    """A doctor report (``housekeeping.doctor.Report``, a layer above this one): its JSON."""

    def to_json(self) -> dict[str, Any]: ...


def render_report(report: Report, out: TextIO | None = None) -> None:
    from celerytool.render import survives_closed_pipe

    survives_closed_pipe(_render_report)(report, out)


def _render_report(report: Report, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    data = report.to_json()
    rows = []
    for c in data["classes"]:
        mem = human_bytes(c["memory"])
        if c["memory_estimated"]:
            mem = f"~{mem}"
        ttl = "-" if c["ttl_none"] == c["count"] else \
            f"{human_seconds(c['ttl_min'])}/{human_seconds(c['ttl_median'])}/{human_seconds(c['ttl_max'])}"
        rows.append({"class": c["what"], "keys": c["count"], "memory": mem,
                     "no ttl": c["ttl_none"], "ttl min/median/max": ttl,
                     "oldest date_done": _utc(c.get("oldest_date_done"))})
    _table(rows, out)
    out.write(f"\n{data['keys']} keys scanned in {data['seconds']:.2f}s; memory measured on up to "
              f"{data['memory_sample_size']} keys per class (~: estimated from that sample)\n")
    if not data["findings"]:
        out.write("\nno findings\n")
    for f in data["findings"]:
        mem = f" ({human_bytes(f['memory'])})" if f["memory"] else ""
        out.write(f"\n[{f['finding']}] {f['message']}{mem}\n")
        for ex in f["examples"]:
            out.write(f"    e.g. {ex}\n")
        out.write(f"  fix: {f['fix']}\n")
    out.flush()


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        out.write("(empty database)\n")
        return
    from celerytool.render.layout import colours
    from celerytool.render.table import Column, Kind, chunk_text, terminal_width

    right = {"keys", "no ttl"}
    kind = Kind(tuple(Column(name, _cell(name), right=name in right, cut_to=12 if name == "class" else 0,
                             style="bold" if name == "class" else "", hide_empty=name == "oldest date_done")
                      for name in rows[0]), low_value=("oldest date_done",))
    out.write(chunk_text(rows, kind, terminal_width(out), styled=colours(out)))


def _cell(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: r[name]
