"""celerytool requeue: return in-flight messages to their queue, as kombu's restore does."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import Duration, full_ids_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("requeue")
@click.argument("queue", required=False, shell_complete=complete_queues)
@selection_options(age=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="List what would be requeued; change nothing.")
@click.option("--lock-wait", type=Duration(0, 600), default=10, show_default=True,
              help="How long to wait for kombu's unacked_mutex (up to 10m).")
@full_ids_option
@with_app
def command(app, queue, selection, yes, dry_run, lock_wait):
    """Put messages stuck in the unacked hash back at the head of their queue (Redis).

    Does what kombu does when a worker shuts down: under kombu's
    unacked_mutex lock, each message leaves unacked and unacked_index and is
    pushed to its queue's priority list marked redelivered, in one atomic
    step. A worker that is still alive may still be running a requeued task,
    which would then run twice: use --older-than to pick only the stale ones.

    \b
    Examples:
      celerytool requeue --dry-run
      celerytool requeue celery --older-than 2h --yes
      celerytool requeue --id 3f0c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f --yes
    """
    from celerytool.cli.guard import confirm, finish, run_listed
    from celerytool.render import warn

    broker = app.open_broker()
    if not broker.capabilities.in_flight:
        from celerytool.errors import Unsupported

        raise Unsupported(broker.capabilities.in_flight_note)
    ops = broker.ops()
    what = selection.describe()
    scope = f"queue {queue!r}" if queue else "all queues"
    alive = "a worker that is still alive may be running these tasks: they will run again"
    if not dry_run:
        if not yes:  # the person answering should know before answering
            warn(alive)
        confirm(yes, f"Requeue in-flight messages ({what}) of {scope}?")
    result = run_listed(app, "requeueing", None, dry_run,
                        lambda control: ops.requeue(queue, selection, control, lock_wait=lock_wait),
                        kind="unacked")
    if dry_run:
        summary = f"would requeue {result.matched} of {result.examined} in-flight message(s) of {scope}"
    else:
        summary = f"requeued {result.done} in-flight message(s) of {scope}"
        if result.done and yes:  # only when something was requeued
            warn(alive)
        if result.vanished:
            summary += f" ({result.vanished} were acked or restored by their worker meanwhile)"
        if result.skipped:
            summary += f" ({result.skipped} kept: no route)"
    return finish(app, result, summary)
