"""Peek on RabbitMQ: fetch without ack on one channel, give everything back with basic.nack.

Classic and quorum queues: basic.consume with prefetch N (no limit beyond the
16-bit prefetch field: the loop reads only as fast as it hands messages on,
so memory stays flat), then basic.nack(multiple, requeue).  On a quorum queue
whose returns count towards a delivery limit, the messages one return short of
it are re-published at the tail instead (budget.py), and a note says what the
read cost.  Stream queues keep
their messages whatever a consumer does: they are read from the first offset
and nothing is returned (streams refuse nack).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from celerytool.brokers.amqp.budget import give_back
from celerytool.brokers.amqp.consume import Consumer, prefetch_for
from celerytool.brokers.amqp.properties import Delivery
from celerytool.brokers.amqp.settle import PEEK_SETTLE_SECONDS, wait_until_back
from celerytool.errors import CeleryToolError

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink


class Peek:
    """One peek of ``want`` messages of ``queue``; iterate ``deliveries()``, then ``finish()``."""

    def __init__(self, broker: AmqpLink, queue: str, want: int, ready: int | None = None,
                 others: int | None = None) -> None:
        """``ready``, ``others``: the queue's ready count (default ``want``) and consumers at the
        start; the count is awaited at the end when no other consumer may take messages."""
        self.broker = broker
        self.queue = queue
        self.want = want
        self.ready = want if ready is None else ready
        self.others = broker.counts(queue)[1] if others is None else others
        self.stream = False
        self.doing = f"peeking at {queue!r}"
        self.budget = broker.budget(queue)
        note = self.budget.note()
        if note:
            broker.warnings.append(note)
        self.at_risk = self.budget.at_risk if self.budget.guarded else None
        self.consumer = Consumer(broker, queue, prefetch_for(want), self.doing, at_risk=self.at_risk)
        self.requeued = 0  # re-published at the tail

    @property
    def delivered(self) -> int:
        return self.consumer.delivered

    def deliveries(self) -> Generator[Delivery, None, None]:
        # With no other consumer nothing else takes the messages counted ready: a pause of the
        # broker (a loaded quorum queue) does not end the peek while some are still ready.
        yield from self.consumer.deliveries(self.want, patient=self.others == 0)
        if self.delivered == 0 and self._is_stream():
            self.stream = True
            self.consumer.close()
            self.consumer = Consumer(self.broker, self.queue, prefetch_for(self.want), self.doing,
                                     {"x-stream-offset": "first"})
            yield from self.consumer.deliveries(self.want)
        if self.delivered < self.want:
            self.broker.warnings.append(
                f"queue {self.queue!r}: {self.want - self.delivered} message(s) were taken by another "
                "consumer during the peek")

    def _is_stream(self) -> bool:
        """Nothing came although messages were ready: a stream queue (needs an offset)?"""
        return self.broker.queue_type(self.queue) == "stream"

    def finish(self) -> None:
        """Stop the consumer, basic.nack(multiple, requeue) everything delivered, close the channel.

        If the connection is already gone the broker has requeued what it
        held (its rule for unacked messages of a closed channel): say so.
        """
        reason = None
        c = self.consumer
        try:
            if not c.ch.is_open:
                reason = "the channel was closed" if self.delivered else None
            else:
                c.stop()
                returned = (self.delivered or c.pending()) and not self.stream
                if returned:
                    self.requeued = give_back(c)
                c.close()
                if returned:  # the queue whole again before the command ends
                    wait_until_back(self.broker, self.queue, self.ready, PEEK_SETTLE_SECONDS,
                                    others=self.others, quiet=True)
        except CeleryToolError as exc:
            reason = exc.message.rsplit(": ", 1)[-1]
        if reason:
            self.broker.warnings.append(
                f"the connection closed before the peeked messages were returned ({reason}); "
                "RabbitMQ requeues the unacked messages of a closed channel itself")
