"""One selected purge / move / ``export --remove`` over a RabbitMQ queue: consume, act, confirm, ack.

AMQP cannot take one message out of the middle of a queue, so the walk
consumes it (manual ack) on one channel in confirm mode and, for each message:

- selected: dropped (purge), published to the destination queue (move; the
  confirm is awaited before the ack), or handed to ``take`` (export writes,
  flushes and fsyncs; another broker publishes and confirms) before its ack;
- not selected (kept), one of two ways:
  - **held** (classic queues): left unacknowledged until the end, then all
    returned with one ``basic.nack(multiple, requeue)``.  RabbitMQ puts them
    back where they were: their order is kept, they are never duplicated, and
    they come back marked redelivered;
  - **re-published** (quorum queues, which count every return towards
    ``x-delivery-limit``, and queues whose type the management API cannot
    tell): published again, unchanged, to the same queue through the default
    exchange; the batch is acked once RabbitMQ confirmed every copy.  The next
    batch is published while the confirms of the previous ones are on their
    way (``confirm.Confirms``).

Nothing is acked before every copy it needs is confirmed, so a crash at any
point leaves a duplicate at worst (at-least-once).  The walk examines at most
the number of messages the queue held at the start; re-publishing keeps the
prefetch low enough that no more than that can be delivered, so no copy is
examined twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from celerytool.brokers.amqp.confirm import WAIT_SECONDS, Confirms
from celerytool.brokers.amqp.consume import Consumer, prefetch_for
from celerytool.brokers.amqp.properties import Delivery, task_and_id, to_message
from celerytool.brokers.base import Control, OpResult
from celerytool.errors import BrokerUnavailable, CeleryToolError
from celerytool.selection import MessageView, Selection

if TYPE_CHECKING:
    from celerytool.brokers.amqp.broker import AmqpBroker

BATCH = 500  # deliveries handled (published, acked, counted) together
WINDOW = 2000  # re-publishing: deliveries unacked at most (a few batches in flight)

# Given the selected deliveries of a batch, do what must be done before they are acked.
Take = Callable[[list[Delivery]], None]


class Walk:
    def __init__(self, broker: AmqpBroker, queue: str, n0: int, *, hold: bool,
                 move_to: str | None = None, take: Take | None = None) -> None:
        self.b = broker
        self.queue = queue
        self.n0 = n0
        self.hold = hold
        self.move_to = move_to
        self.take = take
        self.acked = 0  # deliveries acknowledged
        # (confirm sequence number to wait for, delivery tags to ack one by one | last tag to
        # ack with multiple, selected among them, deliveries among them)
        self.awaiting: deque[tuple[int, list[int] | int, int, int]] = deque()
        self.consumer = Consumer(broker, queue, prefetch_for(n0) if hold else min(WINDOW, n0),
                                 f"walking queue {queue!r}")
        self.confirms = Confirms(self.consumer) if move_to or not hold else None
        self._progress = (time.monotonic(), 0)

    def run(self, selection: Selection, control: Control, result: OpResult) -> None:
        """Examine up to n0 messages; on a normal end (also Ctrl-C) ``finish`` settles the rest."""
        c = self.consumer
        self.result = result
        matched: list[Delivery] = []
        kept: list[Delivery] = []
        position = 0
        by_name = selection.by_name_only
        limits = self.b.options.limits
        for d in c.deliveries(self.n0, self._tend):
            if selection.limit is not None and result.matched >= selection.limit:
                break
            result.examined += 1
            if selection.is_all:
                hit = True
            else:
                names = task_and_id(d[1]) if by_name else None  # protocol 2: no body decode
                hit = (selection.matches_name(names) if names is not None
                       else selection.matches(MessageView(to_message(self.queue, position, d, limits))))
            position += 1
            if hit:
                matched.append(d)
                result.matched += 1
            else:
                kept.append(d)
            if len(matched) + len(kept) >= BATCH or not c.pending():
                self._handle(matched, kept, control)
                matched, kept = [], []
                if control.stop():
                    result.interrupted = True
                    return
        else:
            if c.delivered < self.n0:
                self.b.warnings.append(
                    f"queue {self.queue!r}: {self.n0 - c.delivered} of the {self.n0} message(s) it held "
                    "at the start were taken by another consumer first")
        if matched or kept:
            self._handle(matched, kept, control)

    def _handle(self, matched: list[Delivery], kept: list[Delivery], control: Control) -> None:
        seq = self.confirms.seq if self.confirms is not None else 0
        if matched:
            if self.move_to is not None and self.confirms is not None:
                seq = self.confirms.publish(self.move_to, [(p, body) for _, p, body in matched])
            elif self.take is not None:
                self.take(matched)
        if self.hold:
            if matched:
                self.awaiting.append((seq, [d[0].delivery_tag for d in matched], len(matched), len(matched)))
        else:
            if kept and self.confirms is not None:
                seq = self.confirms.publish(self.queue, [(p, body) for _, p, body in kept])
            last = max(part[-1][0].delivery_tag for part in (matched, kept) if part)
            self.awaiting.append((seq, last, len(matched), len(matched) + len(kept)))
        self._settle()
        control.tick(len(matched) + len(kept))

    def _settle(self) -> None:
        """Ack, in order, every batch whose copies RabbitMQ has all confirmed."""
        confirmed = 0
        if self.confirms is not None:
            self.confirms.check()
            confirmed = self.confirms.confirmed
        c = self.consumer
        while self.awaiting and self.awaiting[0][0] <= confirmed:
            _, tags, selected, count = self.awaiting.popleft()
            if isinstance(tags, list):
                for tag in tags:
                    c.ack(tag)
            else:  # every delivery up to ``tags`` is settled; keep the n0 bound first
                left = self.n0 - (self.acked + count)
                if left <= 0:
                    c.stop()
                elif left < c.prefetch:
                    c.set_prefetch(left)
                c.ack(tags, multiple=True)
            self.acked += count
            self.result.done += selected

    def _tend(self) -> bool:
        """Between polls: settle what is confirmed; True while confirms are awaited."""
        self._settle()
        if not self.awaiting:
            return False
        now, confirmed = time.monotonic(), self.confirms.confirmed if self.confirms else 0
        if confirmed != self._progress[1]:
            self._progress = (now, confirmed)
        elif now - self._progress[0] > WAIT_SECONDS:
            raise BrokerUnavailable(f"RabbitMQ confirmed nothing for {WAIT_SECONDS:g} s while walking "
                                    f"{self.queue!r}; nothing unconfirmed was removed")
        return True

    def finish(self) -> int:
        """Wait for the last confirms, ack, return everything else; the queue's depth after that."""
        c = self.consumer
        if self.confirms is not None:
            self.confirms.wait()
        self._settle()
        c.stop()
        if c.delivered + c.pending() > self.acked:
            c.give_back()
        depth = c.depth()
        c.close()
        return depth

    def abandon(self) -> None:
        """After an error: give back what we can; if the connection is gone the broker does it."""
        c = self.consumer
        try:
            if c.ch.is_open:
                c.stop()
                c.give_back()
                c.close()
        except CeleryToolError:
            pass
