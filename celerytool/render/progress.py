"""A progress bar on stderr (count, rate, ETA) when stderr is a terminal; a no-op otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import Task, TaskID
    from rich.text import Text


class Progress:
    """``with progress(total, "purging") as bar: bar.advance(n)``."""

    def __init__(self, total: int | None, label: str, *, enabled: bool | None = None) -> None:
        from celerytool.render.escape import printable

        self.total = total
        self.label = printable(label)  # may hold a queue name: shown, never obeyed
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            class Rate(TextColumn):
                def render(self, task: Task) -> Text:
                    from rich.text import Text

                    speed = task.finished_speed or task.speed
                    return Text(f"{speed:,.0f}/s" if speed else "")

            self._bar = RichProgress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                Rate(""), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=Console(file=sys.stderr), transient=True,
                # data written to stdout meanwhile (send --from's ids, export's lines) stays on
                # stdout when that is a pipe or a file; only a terminal's is drawn above the bar
                redirect_stdout=sys.stdout.isatty(),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None and n:
            self._bar.advance(self._task, n)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.__exit__(et, ev, tb)
            self._bar = None


def progress(total: int | None, label: str, *, enabled: bool | None = None) -> Progress:
    return Progress(total, label, enabled=enabled)
