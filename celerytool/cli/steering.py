"""What rate-limit, time-limit and pool share: whom to ask, confirmation, the per-worker report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from celerytool.cli.options import dry_run_option, timeout_option, yes_option

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def steering_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """-d/--destination (repeatable), -t/--timeout, -y/--yes, --dry-run."""
    f = dry_run_option("Say which workers would be asked; send nothing.")(f)
    f = yes_option()(f)
    f = timeout_option(1.0, "Seconds to wait for the ping and for the replies.")(f)
    return click.option("-d", "--destination", "destination", multiple=True, metavar="WORKER",
                        help="Ask only this worker (repeatable) [default: every worker answering a ping].")(f)


def run_steer(app: Any, command: str, arguments: dict[str, Any], what: str, destination: tuple[str, ...],
              timeout: float, yes: bool, dry_run: bool, after: str | None = None) -> int:
    """Confirm, send ``command`` to the addressed workers, report each; the exit code (0/1/69)."""
    from celerytool.cli.guard import confirm
    from celerytool.cli.live import open_session
    from celerytool.control.steer import addressed, steer
    from celerytool.errors import ExitCode
    from celerytool.render import note

    session = open_session(app)
    workers = addressed(session, list(destination) or None, timeout)
    if not workers:
        note(f"no worker answered a ping within {timeout:g} s: nothing asked")
        return int(ExitCode.UNAVAILABLE)
    if dry_run:
        return dry_run_report(app, command, arguments, what, workers)
    confirm(yes, f"{what[0].upper()}{what[1:]} on {len(workers)} worker(s) ({', '.join(workers)})?")
    acks = steer(session, command, arguments, workers, timeout)
    return report(app, acks, what, timeout, after)


def dry_run_report(app: Any, command: str, arguments: dict[str, Any], what: str, workers: list[str],
                   said: str | None = None) -> int:
    """--dry-run: the workers that would be asked (rows, or one JSON object); exit 0. ``said``: the
    line on stderr [default: would WHAT on N worker(s): ...]."""
    from celerytool.render import note

    if app.fmt == "table":
        app.emit([_Row(w) for w in workers], "worker-value")
    else:
        app.emit_one({"command": command, "arguments": arguments, "workers": workers, "dry_run": True},
                     "result")
    note(said or f"would {what} on {len(workers)} worker(s): {', '.join(workers)}")
    return 0


def report(app: Any, acks: list[Any], what: str, timeout: float, after: str | None = None) -> int:
    """Each worker's answer (one row each); the exit code: 0 all ok, 1 any error or silence,
    69 none answered."""
    from celerytool.control.steer import NO_REPLY
    from celerytool.errors import ExitCode
    from celerytool.render import note

    if app.fmt == "table":
        app.emit(acks, "revoke")
    else:
        app.emit(acks, "result")
    answered = [a for a in acks if a.ok or a.reply != NO_REPLY]
    failed = [a for a in acks if not a.ok]
    for a in failed:
        note(f"{a.worker}: {a.reply}")
    if not answered:
        note(f"no addressed worker answered within {timeout:g} s")
        return int(ExitCode.UNAVAILABLE)
    if failed:
        return 1
    note(f"{what}: ok on {len(acks)} worker(s)" + (f"; {after}" if after else ""))
    return 0


class _Row:
    """A --dry-run table row (JSON prints one object instead: dry_run_report)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.value = {"dry run": "would be asked"}

    def to_json(self) -> dict[str, Any]:
        return {"worker": self.worker, "dry run": "would be asked"}

