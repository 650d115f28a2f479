"""celerytool summary: a census of a queue (count, bytes, ETAs, retries per task or any field)."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import with_app
from celerytool.cli.selection_options import selection_options


@click.command("summary")
@click.argument("queue", shell_complete=complete_queues)
@click.option("--by", "by", default="task", show_default=True, metavar="FIELD",
              help="Group by this field path: task, priority, retries, eta (by hour), kwargs.tenant, "
                   "headers.x-tenant, ... (the --where fields).")
@click.option("--delayed", is_flag=True,
              help="Count the tasks bound for QUEUE that wait for their ETA (as `delayed` lists them) "
                   "instead of the queue's messages.")
@selection_options()
@with_app
def command(app, queue, by, delayed, selection):
    """Count the messages of QUEUE per value of a field, without changing the queue.

    For each value: how many messages, their total bytes, the oldest and
    newest ETA, and how many are retries; the most frequent first. On Redis
    the lists are only read (by task, eta or retries from the message
    headers alone, fast). On RabbitMQ the messages are fetched and returned
    as peek does, and the command says so.

    \b
    Examples:
      celerytool summary celery
      celerytool summary celery --by kwargs.tenant --task 'billing.*'
      celerytool summary celery --by eta -o json | jq '.[0]'
      celerytool summary celery --by headers.x-tenant --where 'retries > 0'
      celerytool summary celery --delayed --by eta   # ETA tasks bound for celery, by due hour
    """
    from celerytool.render.progress import progress

    broker = app.open_broker()
    if delayed:
        from celerytool.brokers.census import census_of_delayed

        census = census_of_delayed(broker.ops().delayed(queue, selection, 3600.0), by)
        return _show(app, census, by, selection, " waiting for their ETA")
    total = None
    if app.stderr_is_tty():
        from celerytool.cli.guard import queue_total

        total = queue_total(broker, queue)
    with progress(total, "counting") as bar:
        census = broker.census(queue, by, selection, bar.advance)
    return _show(app, census, by, selection)


def _show(app, census, by, selection, what=""):
    rows = census.result()
    if app.fmt == "table":
        import sys

        from celerytool.render import note
        from celerytool.render.table import write_census

        write_census(rows, by, sys.stdout)
        note(f"{census.examined} message(s){what} in {len(rows)} group(s) by {by}"
             + ("" if selection.is_all else f" ({selection.describe()})"))
    else:
        app.emit(({"by": by, **r.to_json()} for r in rows), "census")
