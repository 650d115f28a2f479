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


def drain(ch: Any, queue: str) -> list[tuple[bytes, Any]]:
    """Take every ready message (acked): [(body, properties)] in delivery order."""
    out = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, props))


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
