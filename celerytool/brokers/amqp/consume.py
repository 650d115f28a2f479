"""The one consume loop on RabbitMQ, shared by peek and by purge / move / export.

A ``Consumer`` is one basic.consume (manual ack) on a channel of its own.
``deliveries(want)`` yields at most ``want`` messages in delivery order and
stops early when the broker sends nothing for ``IDLE_SECONDS``; ``ack`` and
``publish`` only queue their frames (pika's blocking channel would flush the
socket once per call), which go out at the next ``poll``.  ``stop`` cancels
the consumer (every delivery still in flight reaches the inbox: none is
rejected unseen), and ``give_back`` returns every unacknowledged delivery of
the channel with one ``basic.nack(multiple, requeue)``; deliveries that
``at_risk`` (budget.py) picks are remembered until acked, for budget.give_back
to re-publish rather than return.

This is the only module that uses pika's channel implementation (``_impl``)
directly.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from celerytool.brokers.amqp.properties import Delivery

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink

MAX_PREFETCH = 65535  # basic.qos prefetch-count is a 16-bit field; 0 means no limit
IDLE_SECONDS = 1.0  # stop waiting when the broker sends nothing for this long
STALL_SECONDS = 30.0  # ... even though the queue has ready messages (patient mode)


def prefetch_for(want: int) -> int:
    """A prefetch that lets ``want`` messages be held unacked at once (0: no limit)."""
    return want if 0 < want <= MAX_PREFETCH else 0


class Consumer:
    def __init__(self, broker: AmqpLink, queue: str | None, prefetch: int | None, doing: str,
                 arguments: dict[str, Any] | None = None,
                 at_risk: Callable[[Any], bool] | None = None) -> None:
        """``queue`` None: a channel that only publishes (consumes nothing).

        ``at_risk(properties)``: True for a delivery that must not be returned (its
        next return could make the broker drop it); kept in ``risky`` until acked.
        """
        self.broker = broker
        self.queue = queue
        self.doing = doing
        self.inbox: deque[Delivery] = deque()
        self.at_risk = at_risk
        self.risky: dict[int, Delivery] = {}  # delivery tag -> delivery, not acked yet
        self.delivered = 0  # yielded by deliveries()
        self.acked = 0
        self.ch = broker.channel()
        self.tag: str | None = None
        if queue is None or prefetch is None:
            return
        with broker.errors(doing):
            self.ch.basic_qos(prefetch_count=prefetch)
            self.tag = self.ch.basic_consume(queue, self._on_delivery, auto_ack=False, arguments=arguments)

    def _on_delivery(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.inbox.append((method, props, body))
        if self.at_risk is not None and self.at_risk(props):
            self.risky[method.delivery_tag] = (method, props, body)

    # -- the loop --------------------------------------------------------------------------
    def poll(self, seconds: float) -> None:
        """Send what is queued, read what arrived (deliveries, confirms); wait at most ``seconds``."""
        with self.broker.errors(self.doing):
            self.broker.connection.process_data_events(time_limit=seconds)

    def deliveries(self, want: int, busy: Callable[[], bool] = lambda: False,
                   patient: bool = False) -> Iterator[Delivery]:
        """Up to ``want`` deliveries; the broker's silence for IDLE_SECONDS ends them unless ``busy()``.

        ``patient``: silence ends them only once the queue has no ready message
        left (a busy broker may pause longer than that), or after STALL_SECONDS.
        """
        inbox = self.inbox
        idle_since = stalled_since = time.monotonic()
        while self.delivered < want:
            if not inbox:
                self.poll(0.05 if busy() else 0.2)
                if not inbox:
                    now = time.monotonic()
                    if busy():
                        idle_since = stalled_since = now
                    elif now - idle_since > IDLE_SECONDS:
                        self._require_open()  # silence from a lost connection is not the end
                        if not patient or now - stalled_since > STALL_SECONDS or self.depth() == 0:
                            return
                        idle_since = now
                    continue
                idle_since = stalled_since = time.monotonic()
            self.delivered += 1
            yield inbox.popleft()

    def _require_open(self) -> None:
        if self.ch.is_open and self.broker.connection.is_open:
            return
        from celerytool.errors import BrokerUnavailable

        raise BrokerUnavailable(f"connection to RabbitMQ at {self.broker.connected_url.redacted()} "
                                f"lost while {self.doing}")

    def pending(self) -> int:
        """Delivered to us but not yet taken from the inbox."""
        return len(self.inbox)

    # -- acks, publishes, qos -----------------------------------------------------------------
    def ack(self, delivery_tag: int, multiple: bool = False, count: int = 1) -> None:
        """basic.ack; ``count``: how many deliveries that settles (for ``held``)."""
        with self.broker.errors(self.doing):
            self.ch._impl.basic_ack(delivery_tag=delivery_tag, multiple=multiple)
        self.acked += count
        if self.risky:
            if multiple:
                for tag in [t for t in self.risky if t <= delivery_tag]:
                    del self.risky[tag]
            else:
                self.risky.pop(delivery_tag, None)

    def held(self) -> int:
        """Delivered to us and not acknowledged."""
        return self.delivered + len(self.inbox) - self.acked

    def publish(self, routing_key: str, body: bytes, props: Any) -> None:
        """basic.publish to the default exchange, mandatory (see confirm.Confirms)."""
        with self.broker.errors(f"publishing to {routing_key!r}"):
            self.ch._impl.basic_publish("", routing_key, body, props, mandatory=True)

    def confirm_mode(self, on_confirm: Callable[[Any], None], on_return: Callable[..., None]) -> None:
        """confirm.select with our own ack/nack callback (pika's waits after every publish).

        Both callbacks are pika's channel implementation's, called as the frames are
        read: a basic.return is always seen before the confirm of the same message.
        """
        ready: list[Any] = []
        self.ch._impl.add_on_return_callback(on_return)
        with self.broker.errors("enabling publisher confirms"):
            self.ch._impl.confirm_delivery(ack_nack_callback=on_confirm, callback=ready.append)
            deadline = time.monotonic() + 30
            while not ready and time.monotonic() < deadline:
                self.broker.connection.process_data_events(time_limit=0.1)
        if not ready:
            from celerytool.errors import BrokerUnavailable

            raise BrokerUnavailable("RabbitMQ did not answer confirm.select")

    # -- the end -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel the consumer; every delivery sent before the broker's cancel-ok goes to the inbox.

        pika's own cancel rejects (requeues) what is still on the wire, unseen: on a
        quorum queue each such reject spends one of the message's delivery attempts
        (or drops it at its limit).  So the cancel is sent underneath pika's blocking
        channel, and the deliveries that arrive before the cancel-ok are kept: the
        caller acks or returns them with the rest (see budget.give_back).
        """
        if self.tag is None or not self.ch.is_open:
            return
        tag, impl, ch = self.tag, self.ch._impl, self.ch
        done: list[Any] = []
        with self.broker.errors(self.doing):
            self.broker.connection.process_data_events(time_limit=0)
            impl.basic_cancel(tag, callback=done.append)
            impl._cancelled.discard(tag)  # or pika rejects what arrives before the cancel-ok
            deadline = time.monotonic() + 30
            # pika's own wait (process_data_events would sit out its whole time limit)
            self.broker.connection._flush_output(lambda: bool(done), lambda: not ch.is_open,
                                                 lambda: time.monotonic() > deadline)
            if not done and ch.is_open:
                from celerytool.errors import BrokerUnavailable

                raise BrokerUnavailable(f"RabbitMQ did not confirm the cancel while {self.doing}")
        # the blocking channel must forget the consumer (its close would cancel it again)
        for evt in [e for e in ch._pending_events if getattr(getattr(e, "method", None), "consumer_tag", None) == tag]:
            ch._pending_events.remove(evt)
            self._on_delivery(ch, evt.method, evt.properties, evt.body)
        ch._consumer_infos.pop(tag, None)
        self.tag = None

    def give_back(self) -> None:
        """basic.nack(multiple, requeue) of every unacknowledged delivery of this channel.

        Callers that may hold deliveries ``at_risk`` use budget.give_back instead.
        """
        with self.broker.errors(self.doing):
            self.ch.basic_nack(delivery_tag=0, multiple=True, requeue=True)

    def depth(self) -> int:
        """Ready messages now (passive declare on this channel; a requeue by nack may not show yet)."""
        with self.broker.errors(self.doing):
            return int(self.ch.queue_declare(str(self.queue), passive=True).method.message_count)

    def close(self) -> None:
        if self.ch.is_open:
            with self.broker.errors(self.doing):
                self.ch.close()
