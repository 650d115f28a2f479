"""Publisher confirms for a whole batch: publish every message, then wait for all the acks.

pika's BlockingChannel in confirm mode waits for each message's confirm before
the next publish (one round trip per message).  Here the channel is put in
confirm mode underneath (on its implementation channel), the batch is
published in one go, and ``publish`` returns only once RabbitMQ has acked every
message of it; a basic.nack or a basic.return (mandatory, unroutable) fails the
whole batch, so the caller acknowledges nothing of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from celerytool.errors import BrokerUnavailable, CeleryToolError

WAIT_SECONDS = 30.0  # no confirm at all for this long: give up (nothing is acked)


class BatchConfirms:
    def __init__(self, broker: Any, ch: Any) -> None:
        self.broker = broker
        self.ch = ch
        self.seq = 0  # publish sequence number of the last message sent
        self.outstanding: set[int] = set()
        self.nacked = 0
        self.returned = 0
        ready: list[Any] = []
        ch.add_on_return_callback(self._on_return)
        with broker.errors("enabling publisher confirms"):
            ch._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=ready.append)
            deadline = time.monotonic() + WAIT_SECONDS
            while not ready and time.monotonic() < deadline:
                broker.connection.process_data_events(time_limit=0.1)
        if not ready:
            raise BrokerUnavailable("RabbitMQ did not answer confirm.select")

    def _on_return(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.returned += 1

    def _on_confirm(self, frame: Any) -> None:
        import pika.spec

        m = frame.method
        if isinstance(m, pika.spec.Basic.Nack):
            self.nacked += 1
        if m.multiple:
            self.outstanding = {s for s in self.outstanding if s > m.delivery_tag}
        else:
            self.outstanding.discard(m.delivery_tag)

    def publish(self, queue: str, messages: Iterable[tuple[Any, bytes]]) -> int:
        """basic.publish (default exchange, mandatory) each (properties, body); wait for every ack."""
        sent = 0
        with self.broker.errors(f"publishing to {queue!r}"):
            for props, body in messages:
                self.seq += 1
                self.outstanding.add(self.seq)  # first: its ack may be read during the next publish
                self.ch.basic_publish("", queue, body, props, mandatory=True)
                sent += 1
            last_progress, left = time.monotonic(), len(self.outstanding)
            while self.outstanding:
                self.broker.connection.process_data_events(time_limit=0.005)  # acks do not end a longer wait
                if len(self.outstanding) < left:
                    last_progress, left = time.monotonic(), len(self.outstanding)
                elif time.monotonic() - last_progress > WAIT_SECONDS:
                    raise BrokerUnavailable(f"RabbitMQ confirmed none of {left} message(s) to {queue!r} "
                                            f"in {WAIT_SECONDS:g} s; nothing unconfirmed was removed")
            self.broker.connection.process_data_events(time_limit=0)  # dispatch any basic.return
        if self.returned:
            raise CeleryToolError(f"queue {queue!r} refused {self.returned} message(s) (unroutable: was it "
                                  "deleted?); nothing unconfirmed was removed")
        if self.nacked:
            raise CeleryToolError(f"RabbitMQ refused {self.nacked} message(s) to {queue!r} (basic.nack); "
                                  "nothing unconfirmed was removed")
        return sent
