"""celerytool peek: the next messages of a queue, decoded, without changing it."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import all_option, full_ids_option, limit_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("peek")
@click.argument("queue", shell_complete=complete_queues)
@limit_option(10, "How many messages, from the next one.")
@all_option("Every message, streamed in bounded memory.")
@click.option("--raw", is_flag=True, help="Include the stored bytes of every message (tagged: celerytool help output).")
@selection_options(limit=False)
@full_ids_option
@with_app
def command(app, queue, limit, all_, raw, selection):
    """Show the next messages of QUEUE in the order a worker would get them.

    Priority sub-lists are read in consumption order. Nothing is removed or
    changed on Redis. Bodies are decoded from json, pickle (never executed),
    msgpack and yaml, with any compression Celery uses. A message that cannot
    be decoded is shown with its error and raw bytes; the others follow.

    On RabbitMQ, messages are fetched without ack and returned with
    basic.nack(requeue=True): they come back marked redelivered, and a
    consumer running at the same time may receive them in between. A quorum
    queue counts each return towards its delivery limit (20 by default on
    RabbitMQ 4): a message one return short of it is published again at the
    tail instead (the deliveries column, JSON delivery_count / delivery_limit /
    requeued_at_tail).

    \b
    Examples:
      celerytool peek celery
      celerytool peek celery -n 1 -o json | jq '.[0].args'
      celerytool peek celery --all -o ndjson > celery.ndjson
      celerytool peek celery --task 'tasks.*' --where 'retries > 0' -n 20
    """
    broker = app.open_broker()
    tally = selection.tally()
    if selection.is_all:
        messages = broker.peek(queue, None if all_ else limit)
    else:
        import itertools

        from celerytool.selection import MessageView

        selection.require_no_age("queued messages")
        found = (m for m in broker.peek(queue, None) if tally.matches(MessageView(m)))
        messages = found if all_ else itertools.islice(found, limit)
    if raw and app.fmt != "table":
        messages = (m.to_json(include_raw=True) for m in messages)
    count = app.emit(messages, "message")
    if count == 0 and app.fmt == "table":
        from celerytool.render import note

        empty = selection.is_all or not tally.examined
        note(f"queue {queue!r} is empty" if empty else tally.none_matched(f"examined in {queue!r}"))
