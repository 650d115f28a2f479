"""celerytool workers: the workers that answer, with what they consume and hold."""

from __future__ import annotations

import click

from celerytool.cli.live import open_session
from celerytool.cli.options import timeout_option, with_app


@click.command("workers")
@timeout_option(1.0, "Seconds to wait for replies (with --wait-for: for that many workers).")
@click.option("--wait-for", type=click.IntRange(min=1), metavar="N",
              help="Succeed only when at least N workers answer; ask again until --timeout.")
@with_app
def command(app, timeout, wait_for):
    """List the workers that answer a ping, with queues, pool and task counts.

    Replies stop being awaited as soon as every worker bound to the control
    exchange has answered (Redis: the workers' pidbox bindings; RabbitMQ:
    the *.celery.pidbox queues of the management API), so this is usually
    much faster than --timeout. A worker that is bound but silent is shown
    with status "silent": probably dead. Exit 0 when at least one (or N)
    answered, 1 otherwise.

    \b
    Examples:
      celerytool workers
      celerytool workers -o json | jq -r '.[] | select(.status == "online") | .name'
      celerytool workers --wait-for 2 --timeout 60   # CI: wait until 2 workers are up
    """
    return list_workers(app, timeout, wait_for)


def list_workers(app, timeout, wait_for=None, only=()):
    """The body of `workers` (also `inspect ping`): emit the rows, return the exit code."""
    from celerytool.control.inspect import gather_workers
    from celerytool.render import note

    session = open_session(app)
    rows = gather_workers(session, timeout, wait_for)
    if only:
        rows = [w for w in rows if w.name in only]
    rows = with_paused(app, rows)
    online = [w for w in rows if w.status == "online"]
    app.emit(rows, "worker")
    silent = [w.name for w in rows if w.status == "silent"]
    if silent:
        note(f"bound to the control exchange but silent (probably dead): {', '.join(silent)}")
    need = wait_for or 1
    if len(online) < need:
        if wait_for:
            note(f"{len(online)} of {wait_for} worker(s) answered within {timeout:g} s")
        else:
            note(f"no worker answered within {timeout:g} s")
        return 1
    return 0


def with_paused(app, rows):
    """Each worker with the queues `celerytool pause` stopped on it (from the broker's records)."""
    from dataclasses import replace

    from celerytool.errors import CeleryToolError
    from celerytool.render import note

    if not rows:
        return rows
    try:
        records = app.open_broker().pause_records()
    except CeleryToolError as exc:  # the listing stands without it
        note(f"paused queues unknown: {exc.message}")
        return rows
    return [replace(w, paused=sorted(q for q, r in records.items() if w.name in r.workers)) for w in rows]
