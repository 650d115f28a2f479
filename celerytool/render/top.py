"""The ``top`` screen: a rich renderable made from a ``TopSnapshot``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int(v * (len(BARS) - 1) / top + 0.5))] for v in values)


def _rate(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _events_note(snap: Any, listening: bool) -> str:
    """Beside "latest failures": advice about -E only for a worker seen running tasks (its
    stats total grew while watched) that sent no task event; never beside workers with -E."""
    if snap.events_seen:
        return ""
    if not listening:
        return "  (--once does not listen for task events)"
    silent = [w.name for w in snap.workers if w.rate_from == "stats" and (w.tasks_per_s or 0) > 0]
    if silent:
        return f"  (no task events from {silent[0]}: start it with -E or use --enable)"
    return "  (none yet)"


def screen(snap: Any, *, hint: str = "q or Ctrl-C quits", listening: bool = True) -> Group:
    """The whole screen: header, queues, workers, latest failures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from celerytool.render.escape import printable

    def t(value: str | None, style: str = "") -> Text:  # stored text: never read as markup or obeyed
        return Text(printable(value or ""), style)

    header = Text.assemble(("celerytool top", "bold"), "  ", snap.taken_at[11:19], " UTC  ", snap.broker,
                           "  ", (hint, "dim"), no_wrap=True, overflow="ellipsis")
    queues = Table(title="queues", title_justify="left", title_style="bold", box=None,
                   header_style="bold dim", expand=True)
    queues.add_column("queue", no_wrap=True)
    queues.add_column("messages", justify="right")
    queues.add_column("change/s", justify="right")
    queues.add_column("consumers", justify="right")
    queues.add_column("last minutes", no_wrap=True, ratio=1)
    for q in snap.queues:
        queues.add_row(t(q.name), str(q.messages), _rate(q.change_per_s, signed=True),
                       "" if q.consumers is None else str(q.consumers), Text(sparkline(q.history), "cyan"))
    if not snap.queues:
        queues.add_row(Text("no queues", "dim"), "", "", "", "")

    workers = Table(title="workers", title_justify="left", title_style="bold", box=None,
                    header_style="bold dim", expand=True)
    columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
        ("worker", "left"), ("status", "left"), ("active", "right"), ("tasks/s", "right"), ("from", "left"),
        ("processed", "right"), ("concurrency", "right"), ("queues", "left"))
    for name, justify in columns:
        workers.add_column(name, justify=justify, no_wrap=name == "worker")
    for w in snap.workers:
        workers.add_row(t(w.name), t(w.status, "green" if w.status == "online" else "red"),
                        "" if w.active is None else str(w.active), _rate(w.tasks_per_s),
                        t(w.rate_from), "" if w.processed is None else str(w.processed),
                        "" if w.concurrency is None else str(w.concurrency), t(",".join(w.queues)))
    if not snap.workers:
        workers.add_row(Text("no worker answered", "red"), "", "", "", "", "", "", "")

    title = Text.assemble(("latest failures", "bold"), (_events_note(snap, listening), "dim"),
                          no_wrap=True, overflow="ellipsis")
    failures = Table(title=title, title_justify="left", box=None, header_style="bold dim", expand=True)
    # one line per failure at any width: the id shortened, the other cells cut with "…"
    # a task name says more than the exception's tail: it keeps its length (up to 32)
    task_width = min(32, max([4] + [len(printable(f.task or "")) for f in snap.failures]))
    for name, ratio, low, high in (("time", None, 8, 8), ("task", None, task_width, task_width),
                                   ("id", None, 8, 8), ("worker", 1, None, None),
                                   ("exception", 3, None, None)):
        failures.add_column(name, no_wrap=True, overflow="ellipsis", ratio=ratio, min_width=low,
                            max_width=high)
    for f in snap.failures:
        failures.add_row(t((f.time or "")[11:19]), t(f.task), t((f.id or "")[:8]), t(f.worker),
                         t(f.exception, "red"))
    return Group(header, Text(""), queues, Text(""), workers, Text(""), failures)
