"""celerytool inspect: what workers hold and know, one row per item."""

from __future__ import annotations

from typing import Any

import click

from celerytool.cli.live import open_session
from celerytool.cli.options import full_ids_option, timeout_option, with_app

WHAT = ["active", "reserved", "scheduled", "revoked", "registered", "stats", "conf", "active-queues", "ping"]


class _What(click.Choice):
    """WHAT, Celery's spelling too (``celery inspect active_queues``)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(value.replace("_", "-") if isinstance(value, str) else value, param, ctx)


@click.command("inspect")
@click.argument("what", type=_What(WHAT))
@click.option("-d", "--destination", "destination", multiple=True, metavar="WORKER",
              help="Ask only this worker (name@host); repeatable.")
@timeout_option(1.0, "Seconds to wait for replies.")
@full_ids_option
@with_app
def command(app, what, destination, timeout):
    """Ask workers what they hold: tasks running (active), prefetched
    (reserved), waiting for their ETA (scheduled), revoked ids, registered
    tasks, stats, configuration or the queues they consume (active-queues,
    or Celery's active_queues).
    `inspect ping` is `celerytool workers` (who answers, with what it consumes).

    Task rows are decoded like peek rows (id, task, args, kwargs, eta,
    worker, time started); JSON holds values, never Python reprs. Replies
    stop being awaited once every expected worker answered. Exit 1 when no
    worker answered.

    \b
    Examples:
      celerytool inspect active
      celerytool inspect scheduled -o json | jq -r '.[] | [.id, .eta] | @tsv'
      celerytool inspect registered -d celery@web1
    """
    from celerytool.control.inspect import TASK_LISTS, inspect, silent_workers
    from celerytool.render import note

    if what == "ping":  # Celery's spelling: `workers` answers it, with more
        from celerytool.cli.workers import list_workers

        note("inspect ping is `celerytool workers`: the workers that answer, with their queues and pool")
        return list_workers(app, timeout, only=destination)

    session = open_session(app)
    targets = list(destination) or None
    rows, answered = inspect(session, what, targets, timeout)
    kind = "task" if what in TASK_LISTS else "worker-value"
    app.emit(rows, kind)
    missing = sorted(set(targets) - set(answered)) if targets else silent_workers(session, answered)
    if missing:
        note(f"no reply from: {', '.join(missing)}")
    if not answered:
        note(f"no worker answered within {timeout:g} s")
        return 1
    if not rows and app.fmt == "table":
        note(f"nothing {what} on {len(answered)} worker(s)")
    return 0
