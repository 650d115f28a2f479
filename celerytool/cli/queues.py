"""celerytool queues: every queue with its depth."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app


@click.command("queues")
@click.argument("names", nargs=-1, metavar="[QUEUE]...")
@click.option("-a", "--all", "include_internal", is_flag=True,
              help="Include Celery's own remote-control (*.pidbox) and event (celeryev.*) queues.")
@click.option("--scan/--no-scan", default=None,
              help="Also find queues that hold messages but have no binding, by scanning for list "
                   "keys [default: only when the database has at most 200,000 keys].")
@with_app
def command(app, names, include_internal, scan):
    """List queues with their depth.

    On Redis, queues are found from kombu's _kombu.binding.* sets (an empty
    queue has no list key), from list keys (see --scan), plus the NAMES
    given; the depth sums the priority
    sub-lists, shown per priority bucket. On RabbitMQ the management API
    lists them with ready, unacked and consumer counts.

    \b
    Examples:
      celerytool queues
      celerytool queues -b redis://:pw@cache:6379/1 -o json | jq '.[] | select(.messages > 0)'
      celerytool queues critical reports   # also show these, even if unknown
    """
    broker = app.open_broker(include_internal=include_internal)
    infos = broker.queues(names, scan=scan)
    app.emit(infos, "queue")
    if not infos and app.fmt == "table":
        from celerytool.render import note

        note("no queues found (name one to check it: celerytool queues NAME)")
