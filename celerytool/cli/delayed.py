"""celerytool delayed: tasks waiting for their ETA or countdown, where they wait, and when due."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import Duration, full_ids_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("delayed")
@click.argument("queue", required=False, shell_complete=complete_queues)
@selection_options()
@click.option("--visibility-timeout", type=Duration(1), default="1h", show_default=True, metavar="DURATION",
              help="The workers' Redis visibility_timeout: an ETA beyond it means the task is delivered again.")
@full_ids_option
@with_app
def command(app, queue, selection, visibility_timeout):
    """List the tasks waiting for their ETA (countdown), soonest first.

    Redis: ETA tasks a worker prefetched are held in kombu's `unacked` hash
    until they are due; one due later than its delivery + the visibility
    timeout is delivered to a worker again before it runs (flagged "delivered
    again": it can run twice). RabbitMQ with Celery's native delayed delivery
    (quorum queues, Celery 5.5+): tasks in the 28 `celery_delayed_<L>` levels,
    read as peek reads them (nothing is removed). Due time from the task's
    `eta`, else from the routing-key bits and RabbitMQ's x-death times. With
    QUEUE, only tasks bound for it. Read-only.

    \b
    Examples:
      celerytool delayed
      celerytool delayed celery --task 'reports.*' -o json | jq -r '.[] | [.id, .due] | @tsv'
      celerytool delayed --visibility-timeout 12h -o json | jq '[.[] | select(.delivered_again)] | length'
    """
    from celerytool.render import note

    rows = app.open_broker().ops().delayed(queue, selection, visibility_timeout)  # the walk pauses the GC itself
    app.emit(rows, "delayed")
    again = sum(d.delivered_again for d in rows)
    if app.fmt == "table":
        if not rows:
            note("no task is waiting for its ETA" + (f" for queue {queue!r}" if queue else ""))
        else:
            note(f"{len(rows)} task(s) waiting for their ETA")
    if again:
        note(f"{again} task(s) are due after the visibility timeout ({visibility_timeout:g} s): kombu will "
             "deliver them to a worker again before they run (they can run twice); raise the workers' "
             "visibility_timeout above the longest countdown")
    return 0
