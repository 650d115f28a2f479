"""celerytool bindings: exchange -> queue routing tables."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app


@click.command("bindings")
@click.option("-q", "--queue", "queue", metavar="QUEUE", help="Only bindings to this queue.")
@click.option("-e", "--exchange", "exchange", metavar="NAME", help="Only bindings of this exchange.")
@with_app
def command(app, queue, exchange):
    """List the bindings that route messages to queues.

    On Redis these are kombu's _kombu.binding.<exchange> sets; on RabbitMQ
    the management API's bindings.

    \b
    Examples:
      celerytool bindings
      celerytool bindings -q celery -o json
    """
    broker = app.open_broker(include_internal=True)
    rows = [b for b in broker.bindings()
            if (queue is None or b.queue == queue) and (exchange is None or b.exchange == exchange)]
    app.emit(rows, "binding")
