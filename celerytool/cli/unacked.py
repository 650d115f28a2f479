"""celerytool unacked: the messages kombu holds in flight in Redis's ``unacked`` hash."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import full_ids_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("unacked")
@click.argument("queue", required=False, shell_complete=complete_queues)
@selection_options(age=True)
@full_ids_option
@with_app
def command(app, queue, selection):
    """List in-flight messages: delivered to a worker, not yet acknowledged (Redis).

    Each row shows the queue the message would return to, when it was
    delivered and its age, decoded like peek. Celery ETA/countdown tasks
    wait here too. Oldest delivery first. Nothing is changed.

    \b
    Examples:
      celerytool unacked
      celerytool unacked celery --older-than 1h -o json | jq '.[].id'
    """
    from celerytool.render import note

    broker = app.open_broker()
    if not broker.capabilities.in_flight:
        from celerytool.errors import Unsupported

        raise Unsupported(broker.capabilities.in_flight_note)
    tally = selection.tally()
    count = app.emit(broker.ops().unacked(queue, tally), "unacked")
    if count == 0 and app.fmt == "table":
        scope = f" for queue {queue!r}" if queue else ""
        note(f"no unacked messages{scope}" if not tally.examined
             else tally.none_matched(f"in flight{scope}"))
