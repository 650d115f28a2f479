"""The table form of ``doctor``'s report: classes, then findings with their fix."""

from __future__ import annotations

import sys
from typing import Any, TextIO


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


def render_report(report: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    data = report.to_json()
    rows = []
    for c in data["classes"]:
        mem = human_bytes(c["memory"])
        if c["memory_estimated"]:
            mem = f"~{mem} (sample {c['memory_sample']})"
        ttl = "-" if c["ttl_none"] == c["count"] else \
            f"{human_seconds(c['ttl_min'])} / {human_seconds(c['ttl_median'])} / {human_seconds(c['ttl_max'])}"
        rows.append({"class": c["what"], "keys": c["count"], "memory": mem,
                     "no ttl": c["ttl_none"], "ttl min / median / max": ttl,
                     "oldest date_done": c.get("oldest_date_done") or ""})
    _table(rows, out)
    out.write(f"\n{data['keys']} keys scanned in {data['seconds']:.2f}s; memory measured on up to "
              f"{data['memory_sample_size']} keys per class (~ = estimated from that sample)\n")
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
    heads = list(rows[0]) if rows else []
    if not rows:
        out.write("(empty database)\n")
        return
    right = {"keys", "no ttl"}
    cells = [[str(r[h]) for h in heads] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if h in right else v.ljust(w)
                         for v, w, h in zip(values, widths, heads, strict=True)).rstrip()

    out.write(line(heads) + "\n")
    for c in cells:
        out.write(line(c) + "\n")
