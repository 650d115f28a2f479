"""celerytool purge: empty a queue, or remove exactly the selected messages."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import full_ids_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("purge")
@click.argument("queue", shell_complete=complete_queues)
@selection_options()
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="Count and list what would go; change nothing.")
@full_ids_option
@with_app
def command(app, queue, selection, yes, dry_run):
    """Remove the messages of QUEUE: all of them, or only the selected ones.

    Without a selection the queue and its priority lists are deleted in one
    step. With one, exactly the matching messages are removed while workers
    and producers keep running; every other message stays, in its order.

    \b
    Examples:
      celerytool purge celery --dry-run
      celerytool purge celery --task 'tasks.send_email' --yes
      celerytool purge celery --where "kwargs.user_id == 42" --limit 10 -y -o json
    """
    from celerytool.cli.guard import finish, vanished_note, walk_queue

    broker = app.open_broker()
    ops = broker.ops()
    what = selection.describe()
    result = walk_queue(app, broker, queue, question=f"Remove {what} from queue {queue!r} on "
                        f"{app.broker_url.redacted()}?", label="purging", yes=yes, dry_run=dry_run,
                        op=lambda control: ops.purge(queue, selection, control))
    if dry_run:
        summary = f"would remove {result.matched} of {result.examined} message(s) from {queue!r} ({what})"
    else:
        summary = f"removed {result.done} message(s) from {queue!r}, {result.kept} kept" + vanished_note(result)
    return finish(app, result, summary)
