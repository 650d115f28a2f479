"""Helpers for RabbitMQ tests: plain pika reads that do not go through celerytool."""

from __future__ import annotations

from typing import Any

from services import wait_for  # noqa: F401  (re-exported for the amqp tests)


def declared(arguments: dict[str, Any]) -> dict[str, Any]:
    """A queue's arguments as declared: RabbitMQ 4 adds ``x-queue-type: classic`` to classic queues'."""
    return {k: v for k, v in arguments.items() if (k, v) != ("x-queue-type", "classic")}


def depth(ch: Any, queue: str) -> int:
    """Ready messages, by passive declare."""
    return ch.queue_declare(queue, passive=True).method.message_count


CONSUME_FROM = 200  # ready messages from which a consumer takes them: basic.get is a round trip each


def drain(ch: Any, queue: str) -> list[tuple[bytes, Any]]:
    """Take every ready message (acked): [(body, properties)] in delivery order."""
    out = [(body, props) for _, props, body in take(ch, queue, ack=True)]
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, props))


def take(ch: Any, queue: str, *, ack: bool) -> list[tuple[Any, Any, bytes]]:
    """[(method, properties, body)] of the messages ``queue`` counts as ready, by a consumer, when
    they are many (none otherwise: basic.get takes few as fast). ``ack``: each is acked, and the
    consumer cancelled (what it got beyond the count goes back); else they stay unacked until the
    channel closes (a read that leaves the queue as it was)."""
    count = depth(ch, queue)
    out: list[tuple[Any, Any, bytes]] = []
    if count < CONSUME_FROM:
        return out
    for method, props, body in ch.consume(queue, inactivity_timeout=10):
        if method is None:  # fewer arrived than counted: the caller's basic.get takes any left
            break
        out.append((method, props, body))
        if ack:
            ch.basic_ack(method.delivery_tag)
        if len(out) >= count:
            break
    if ack:
        ch.cancel()
    return out


def drain_ids(ch: Any, queue: str) -> list[str]:
    """Celery task ids (protocol 2 header ``id``) of every ready message, in order, removing them."""
    return [props.headers["id"] for _, props in drain(ch, queue)]




def publish_plain(ch: Any, queue: str, bodies: list[bytes], **props: Any) -> None:
    import pika

    for body in bodies:
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **props))
    settled(ch, queue)


def settled(ch: Any, queue: str) -> None:
    """Return once RabbitMQ has put what ``ch`` published into ``queue`` (which must exist): a
    passive declare on the same channel is answered after them. Without it a command on another
    connection, run at once, can count the queue before they arrive (on a loaded machine)."""
    ch.queue_declare(queue, passive=True)
