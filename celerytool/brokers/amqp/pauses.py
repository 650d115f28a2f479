"""`celerytool pause` records on RabbitMQ: one small classic queue per paused queue.

``celerytool.paused.<queue>`` holds one persistent JSON message (a ``PauseRecord``): which
workers `pause` stopped consuming ``<queue>``, so that `resume`, run by anyone, restarts
exactly those. A classic queue (declared so explicitly, whatever the vhost's default queue
type) has no delivery limit: reading the record (get, then return it) costs nothing. The
management API's listing shows which records exist; a named record is read over AMQP alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from celerytool.brokers.base import PAUSE_RECORDS
from celerytool.model import PauseRecord

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink

PREFIX = PAUSE_RECORDS + "."
ARGUMENTS = {"x-queue-type": "classic"}


def record_queue(queue: str) -> str:
    return PREFIX + queue


def paused_in(names: Iterable[str]) -> set[str]:
    """The queues whose record is among ``names`` (a queue listing)."""
    return {n[len(PREFIX):] for n in names if n.startswith(PREFIX)}


def read(broker: AmqpLink, queues: Iterable[str]) -> dict[str, PauseRecord]:
    """The records of ``queues`` that exist (passive declare, then get and return the message)."""
    import pika.exceptions as pex

    out: dict[str, PauseRecord] = {}
    ch = broker.channel()
    for queue in queues:
        name = record_queue(queue)
        with broker.errors(f"reading the pause record {name!r}"):
            try:
                ch.queue_declare(name, passive=True)
            except pex.ChannelClosedByBroker as exc:  # 404: not paused; the channel is closed
                if exc.reply_code != 404:
                    raise
                ch = broker.channel()
                continue
            method, _props, body = ch.basic_get(name, auto_ack=False)
            if method is None:  # a record queue without its message: paused, workers unknown
                out[queue] = PauseRecord(queue, (), "", "")
                continue
            assert body is not None  # pika gives a body with every GetOk
            out[queue] = PauseRecord.from_text(queue, body)
            ch.basic_nack(method.delivery_tag, requeue=True)
    if ch.is_open:
        ch.close()
    return out


def save(broker: AmqpLink, queue: str, record: PauseRecord | None) -> None:
    """Replace the record of ``queue`` (published with confirms), or delete it (None)."""
    import pika

    name = record_queue(queue)
    ch = broker.channel()
    with broker.errors(f"writing the pause record {name!r}"):
        if record is None:
            ch.queue_delete(name)
        else:
            ch.confirm_delivery()
            ch.queue_declare(name, durable=True, arguments=ARGUMENTS)
            ch.queue_purge(name)
            ch.basic_publish("", name, record.to_text().encode(),
                             pika.BasicProperties(delivery_mode=2, content_type="application/json"),
                             mandatory=True)
        ch.close()
