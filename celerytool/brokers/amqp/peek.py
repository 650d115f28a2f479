"""Peek on RabbitMQ: fetch without ack on one channel, decode, give everything back with basic.nack.

Classic and quorum queues: basic.consume with prefetch N (basic.get one by
one beyond the 16-bit prefetch limit), then basic.nack(multiple, requeue).
Stream queues keep their messages whatever a consumer does: they are read
from the first offset and nothing is returned (streams refuse nack).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from celerytool.clients.amqp import describe

if TYPE_CHECKING:
    from celerytool.brokers.amqp.broker import AmqpBroker

MAX_PREFETCH = 65535  # basic.qos prefetch-count is a 16-bit field
IDLE_SECONDS = 1.0  # stop waiting when the broker sends nothing for this long

Delivery = tuple[Any, Any, bytes]  # (Basic.Deliver or GetOk, BasicProperties, body)


class Peek:
    """One peek of ``want`` messages of ``queue``; iterate ``deliveries()``, then ``finish()``."""

    def __init__(self, broker: AmqpBroker, queue: str, want: int) -> None:
        self.broker = broker
        self.queue = queue
        self.want = want
        self.delivered = 0
        self.stream = False
        self.ch = broker.channel()
        self.doing = f"peeking at {queue!r}"

    def deliveries(self) -> Iterator[Delivery]:
        if self.want > MAX_PREFETCH:
            yield from self._get()
        else:
            yield from self._consume()
            if self.delivered == 0 and self._is_stream():
                self.stream = True
                self._close()
                self.ch = self.broker.channel()
                yield from self._consume({"x-stream-offset": "first"})
        if self.delivered < self.want:
            self.broker.warnings.append(
                f"queue {self.queue!r}: {self.want - self.delivered} message(s) were taken by another "
                "consumer during the peek")

    def _consume(self, arguments: dict[str, Any] | None = None) -> Iterator[Delivery]:
        """basic.consume with prefetch ``want``: the broker pushes them all at once."""
        inbox: deque[Delivery] = deque()
        with self.broker.errors(self.doing):
            self.ch.basic_qos(prefetch_count=self.want)
            tag = self.ch.basic_consume(self.queue, lambda _c, m, p, b: inbox.append((m, p, b)),
                                        auto_ack=False, arguments=arguments)
        try:
            idle_since = time.monotonic()
            while self.delivered < self.want:
                if not inbox:
                    with self.broker.errors(self.doing):
                        self.broker.connection.process_data_events(time_limit=0.2)
                    if not inbox:
                        if time.monotonic() - idle_since > IDLE_SECONDS:
                            return
                        continue
                    idle_since = time.monotonic()
                self.delivered += 1
                yield inbox.popleft()
        finally:
            self._stop_consumer(tag)

    def _get(self) -> Iterator[Delivery]:
        """basic.get one by one: beyond the prefetch limit, memory stays bounded."""
        while self.delivered < self.want:
            with self.broker.errors(self.doing):
                method, props, body = self.ch.basic_get(self.queue, auto_ack=False)
            if method is None:
                return
            self.delivered += 1
            yield method, props, body

    def _stop_consumer(self, tag: str) -> None:
        """Cancel our consumer without pika rejecting anything, so the nack that follows
        is the only return and the requeued messages are not pushed back to us.

        A prefetch of 1 while we hold at least one message stops further deliveries;
        those already on the wire are dispatched (to the inbox) before basic.cancel,
        which then has nothing of its own to reject.
        """
        import pika.exceptions as pex

        try:
            if self.ch.is_open:
                self.ch.basic_qos(prefetch_count=1)
                self.broker.connection.process_data_events(time_limit=0)
                self.ch.basic_cancel(tag)
        except (pex.AMQPConnectionError, pex.AMQPChannelError, OSError):
            pass  # a dead connection: finish() says what the broker does then

    def _is_stream(self) -> bool:
        """Nothing came although messages were ready: a stream queue (needs an offset)?"""
        return self.broker.queue_type(self.queue) == "stream"

    def finish(self) -> None:
        """basic.nack(multiple, requeue) of everything delivered, then close the channel.

        If the connection is already gone the broker has requeued what it
        held (its rule for unacked messages of a closed channel): say so.
        """
        import pika.exceptions as pex

        reason = None
        try:
            if self.delivered and not self.stream:
                if not self.ch.is_open:
                    reason = "the channel was closed"
                else:
                    self.ch.basic_nack(delivery_tag=0, multiple=True, requeue=True)
            self._close()
        except (pex.AMQPConnectionError, pex.AMQPChannelError, OSError) as exc:
            reason = describe(exc)
        if reason:
            self.broker.warnings.append(
                f"the connection closed before the peeked messages were returned ({reason}); "
                "RabbitMQ requeues the unacked messages of a closed channel itself")

    def _close(self) -> None:
        if self.ch.is_open:
            self.ch.close()

