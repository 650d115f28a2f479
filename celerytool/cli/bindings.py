"""celerytool bindings: exchange -> queue routing tables."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import internal_option, queue_option, with_app


@click.command("bindings")
@queue_option("Only bindings to this queue.", shell_complete=complete_queues)
@click.option("-e", "--exchange", "exchange", metavar="NAME", help="Only bindings of this exchange.")
@internal_option("Include the bindings of Celery's own remote-control (*.pidbox) and event (celeryev.*) queues.")
@with_app
def command(app, queue, exchange, include_internal):
    """List the bindings that route messages to queues.

    On Redis these are kombu's _kombu.binding.<exchange> sets; on RabbitMQ
    the management API's bindings. Celery's own plumbing (*.pidbox,
    celeryev.* queues) is left out unless --internal, as in `queues`.

    \b
    Examples:
      celerytool bindings
      celerytool bindings -q celery -o json
      celerytool bindings --internal     # with Celery's pidbox and event queues
    """
    from celerytool.brokers.base import is_internal_queue

    broker = app.open_broker(include_internal=True)
    rows = [b for b in broker.bindings()
            if (queue is None or b.queue == queue) and (exchange is None or b.exchange == exchange)
            and (include_internal or queue is not None or not is_internal_queue(b.queue))]
    app.emit(rows, "binding")
