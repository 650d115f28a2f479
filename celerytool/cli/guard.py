"""What destructive commands share: confirmation, Ctrl-C between messages, progress, summary."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from celerytool.cli.options import dry_run_option, yes_option  # noqa: F401 -- the decorators live there
from celerytool.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from celerytool.brokers.base import Control, OpResult

T = TypeVar("T")


def confirm(yes: bool, question: str) -> None:
    """Ask on a terminal; without one, insist on --yes."""
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(f"{question.rstrip('?')}: refusing without --yes (not on a terminal)")
    import click

    if not click.confirm(question, default=False, err=True):
        raise UsageError("cancelled: nothing was changed")


@contextlib.contextmanager
def running(app: Any, label: str, total: int | None, *, dry_run: bool = False) -> Iterator[Control]:
    """A Control whose stop() turns true on the first Ctrl-C (the second one aborts)."""
    from celerytool.brokers.base import Control
    from celerytool.render.progress import progress

    asked: list[Any] = []

    def on_sigint(signum: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(True)
        sys.stderr.write("\nstopping after the current batch (Ctrl-C again to abort)\n")

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (tests): no handler
        previous = None
    try:
        with progress(total, label) as bar:
            yield Control(tick=bar.advance, stop=lambda: bool(asked), dry_run=dry_run)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def run_listed(app: Any, label: str, total: int | None, dry_run: bool, op: Callable[[Control], T],
               kind: str = "message") -> T:
    """``op(control)`` under ``running``; in a dry run each match is listed on stdout."""
    from celerytool.cli.listing import Shown

    shown = Shown(app, dry_run)
    with running(app, label, total, dry_run=dry_run) as control:
        control.on_match = shown.add if dry_run else None
        result = op(control)
    shown.flush(kind)
    return result


def walk_queue(app: Any, broker: Any, queue: str, *, question: str, label: str, yes: bool, dry_run: bool,
               op: Callable[[Control], T]) -> T:
    """A changing walk over ``queue`` (purge, move): confirmed unless a dry run, then
    ``op(control)`` with a progress bar on a terminal, each match listed in a dry run."""
    if not dry_run:
        confirm(yes, question)
    return run_listed(app, label, queue_total(broker, queue), dry_run, op)


def vanished_note(result: OpResult) -> str:
    """What a consumer took while the walk ran ('' when nothing)."""
    if not result.vanished:
        return ""
    return f" ({result.vanished} matching were taken by a consumer first)"


def no_ids_in(source: Any, verb: str) -> int:
    """An empty ``--from`` (a pipeline that found nothing): say so, act on nothing, exit 0."""
    from celerytool.render import note

    name = getattr(source, "name", "--from")
    note(f"no task id in {'stdin' if name == '<stdin>' else name}: nothing to {verb}")
    return 0


def queue_total(broker: Any, queue: str) -> int | None:
    """Messages in ``queue`` for the progress bar (only worth asking on a terminal)."""
    if not sys.stderr.isatty():
        return None
    try:
        infos = broker.queues([queue])
    except Exception:
        return None
    return next((q.messages for q in infos if q.name == queue), None)


def finish(app: Any, result: Any, summary: str) -> int:
    """The one-line summary (stderr), the JSON result (stdout, json/ndjson); the exit code."""
    from celerytool.render import note

    if app.fmt != "table":
        app.emit_one(result, "result")
    if result.interrupted:
        note(f"interrupted: {summary}")
        return int(ExitCode.INTERRUPTED)
    note(summary)
    return 0
