"""Pipelined publisher confirms: publish without waiting, learn later what RabbitMQ confirmed.

pika's BlockingChannel in confirm mode waits for each message's confirm before
the next publish (one round trip per message).  Here the consumer's channel is
put in confirm mode underneath (``Consumer.confirm_mode``): ``publish`` only
queues the frames and returns the message's sequence number; ``confirmed``
(every sequence number up to it acked by RabbitMQ) grows as confirms arrive
during ``Consumer.poll``.  A caller acknowledges a source delivery only once
every copy it needs is confirmed, so the next batch is published while the
previous one's confirms are on their way.  A basic.nack or a basic.return
(mandatory, unroutable) is an error raised by ``check``, before anything
later is acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from celerytool.brokers.amqp.consume import Consumer
from celerytool.errors import BrokerUnavailable, CeleryToolError

WAIT_SECONDS = 30.0  # no confirm at all for this long: give up (nothing unconfirmed is acked)


class Confirms:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.seq = 0  # publish sequence number of the last message sent
        self.confirmed = 0  # every sequence number <= this one is confirmed
        self._singles: set[int] = set()  # confirmed one by one, beyond ``confirmed``
        self.nacked = 0
        self.returned = 0
        self.where = ""
        consumer.confirm_mode(self._on_confirm, self._on_return)

    def _on_return(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.returned += 1
        self.where = method.routing_key

    def _on_confirm(self, frame: Any) -> None:
        import pika.spec

        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            self.nacked += 1
        tag = m.delivery_tag
        if m.multiple:
            self.confirmed = max(self.confirmed, tag)
        elif tag > self.confirmed:
            self._singles.add(tag)
        singles = self._singles
        while singles and self.confirmed + 1 in singles:
            singles.discard(self.confirmed + 1)
            self.confirmed += 1
        if singles and min(singles) <= self.confirmed:
            self._singles = {s for s in singles if s > self.confirmed}

    def publish(self, queue: str, messages: Iterable[tuple[Any, bytes]]) -> int:
        """basic.publish each (properties, body) to ``queue``; return the last sequence number."""
        publish = self.consumer.publish
        for props, body in messages:
            self.seq += 1
            publish(queue, body, props)
        return self.seq

    def check(self) -> None:
        """Raise when RabbitMQ refused anything published so far (nothing after it is acked)."""
        if self.returned:
            raise CeleryToolError(f"queue {self.where!r} refused {self.returned} message(s) (unroutable: "
                                  "was it deleted?); nothing unconfirmed was removed")
        if self.nacked:
            raise CeleryToolError(f"RabbitMQ refused {self.nacked} message(s) (basic.nack); "
                                  "nothing unconfirmed was removed")

    def wait(self, seq: int | None = None) -> None:
        """Poll until everything up to ``seq`` (default: all published) is confirmed, then ``check``."""
        target = self.seq if seq is None else seq
        last_progress, last = time.monotonic(), self.confirmed
        while self.confirmed < target:
            self.consumer.poll(0.005)  # a confirm does not end a longer wait
            self.check()
            if self.confirmed > last:
                last_progress, last = time.monotonic(), self.confirmed
            elif time.monotonic() - last_progress > WAIT_SECONDS:
                raise BrokerUnavailable(f"RabbitMQ confirmed none of {target - self.confirmed} message(s) "
                                        f"in {WAIT_SECONDS:g} s; nothing unconfirmed was removed")
        self.consumer.poll(0)  # dispatch any basic.return that came with the last confirm
        self.check()
