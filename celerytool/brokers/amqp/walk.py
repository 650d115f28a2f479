"""One selected purge / move / ``export --remove`` over a RabbitMQ queue: consume, act, confirm, ack.

AMQP cannot take one message out of the middle of a queue, so the walk
consumes it (manual ack; copies go out on a channel of their own in confirm
mode) and, for each message:

- selected: dropped (purge), published to the destination queue (move; the
  confirm is awaited before the ack), or handed to ``take`` (export writes,
  flushes and fsyncs; another broker publishes and confirms) before its ack;
- not selected (kept), one of two ways:
  - **held** (classic queues): left unacknowledged until the end, then all
    returned with ``basic.nack(multiple, requeue)``.  RabbitMQ puts them back
    where they were: their order is kept, they are never duplicated, and they
    come back marked redelivered.  A channel finds the delivery to ack by
    walking its unacked list from the oldest, so acking the selected messages
    between thousands of held ones would cost time in the square of their
    number: the walk takes SEGMENT messages per channel (a consumer with that
    prefetch, cancelled once its window is full, so nothing is in flight), acks
    that segment's selected ones there, and goes on with a new channel;
  - **re-published** (quorum queues, which count every return towards
    ``x-delivery-limit``, and queues whose type the management API cannot
    tell): published again, unchanged, to the same queue through the default
    exchange; the batch is acked once RabbitMQ confirmed every copy.  The next
    batch is published while the confirms of the previous ones are on their
    way (``confirm.Confirms``).

Deliveries the walk returns unhandled (it stopped early: ``--limit``, Ctrl-C, an
error) follow budget.py: on a quorum queue, one that is a return short of its
delivery limit is re-published at the tail rather than returned.

Nothing is acked before every copy it needs is confirmed, so a crash at any
point leaves a duplicate at worst (at-least-once).  The walk examines at most
the number of messages the queue held at the start (n0).  When re-publishing,
no copy may even be delivered to us: the broker delivers at most acked +
prefetch messages, so acks stop at n0 - prefetch while the consumer runs and
the last ones are acked after it is cancelled (a running consumer's prefetch
cannot be lowered).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from celerytool.brokers.amqp.budget import give_back, without_count
from celerytool.brokers.amqp.confirm import WAIT_SECONDS, Confirms
from celerytool.brokers.amqp.consume import Consumer
from celerytool.brokers.amqp.properties import Delivery, task_and_id, to_message
from celerytool.brokers.amqp.settle import wait_until_back
from celerytool.brokers.base import Control, OpResult
from celerytool.errors import BrokerUnavailable, CeleryToolError
from celerytool.selection import MessageView, Selection

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink

BATCH = 500  # deliveries handled (published, acked, counted) together
WINDOW = 2000  # re-publishing: deliveries unacked at most (a few batches in flight)
SEGMENT = 1000  # holding: deliveries per channel
MAX_SEGMENTS = 1000  # holding: channels at most (RabbitMQ allows 2047 per connection by default)

# Given the selected deliveries of a batch, do what must be done before they are acked.
Take = Callable[[list[Delivery]], None]


def can_hold(queue_type: str | None, n0: int) -> bool:
    """Hold the kept messages (classic queues, up to SEGMENT * MAX_SEGMENTS) or re-publish them."""
    return queue_type == "classic" and n0 <= SEGMENT * MAX_SEGMENTS


class Walk:
    def __init__(self, broker: AmqpLink, queue: str, n0: int, *, hold: bool,
                 move_to: str | None = None, take: Take | None = None) -> None:
        self.b = broker
        self.queue = queue
        self.n0 = n0
        self.hold = hold
        self.move_to = move_to
        self.take = take
        self.doing = f"walking queue {queue!r}"
        self.others = broker.counts(queue)[1]  # consumers besides us (settle.py)
        budget = broker.budget(queue)
        self.at_risk = budget.at_risk if budget.guarded else None
        self.consumers: list[Consumer] = []  # holding: one per segment; re-publishing: one
        # (confirm sequence number to wait for, consumer, delivery tags to ack one by one | last
        # tag to ack with multiple, selected among them)
        self.awaiting: deque[tuple[int, Consumer, list[int] | int, int]] = deque()
        self.publisher = None if hold and move_to is None else Consumer(broker, None, None, self.doing)
        self.confirms = None if self.publisher is None else Confirms(self.publisher)
        self._progress = (time.monotonic(), 0)

    def _deliveries(self) -> Iterator[Delivery]:
        """The first n0 deliveries, through one consumer or (holding) one per segment."""
        if not self.hold:
            c = Consumer(self.b, self.queue, min(WINDOW, self.n0), self.doing, at_risk=self.at_risk)
            self.consumers.append(c)
            yield from c.deliveries(self.n0, self._tend, patient=True)
            return
        delivered = 0
        while delivered < self.n0:
            want = min(SEGMENT, self.n0 - delivered)  # a full window at the end: nothing in flight
            c = Consumer(self.b, self.queue, want, self.doing, at_risk=self.at_risk)
            self.consumers.append(c)
            if len(self.consumers) > 1:
                self.consumers[-2].stop()  # its selected messages may be acked now
                self._settle()
            yield from c.deliveries(want, self._tend, patient=True)
            delivered += c.delivered
            if c.delivered < want:
                return

    def run(self, selection: Selection, control: Control, result: OpResult) -> None:
        """Examine up to n0 messages; on a normal end (also Ctrl-C) ``finish`` settles the rest."""
        self.result = result
        matched: list[Delivery] = []
        kept: list[Delivery] = []
        position = 0
        by_name = selection.by_name_only
        limits = self.b.options.limits
        for d in self._deliveries():
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
            if len(matched) + len(kept) >= BATCH or not self.consumers[-1].pending():
                self._handle(matched, kept, control)
                matched, kept = [], []
                if control.stop():
                    result.interrupted = True
                    return
        else:
            seen = sum(c.delivered for c in self.consumers)
            if seen < self.n0:
                self.b.warnings.append(
                    f"queue {self.queue!r}: {self.n0 - seen} of the {self.n0} message(s) it held "
                    "at the start were taken by another consumer first")
        if matched or kept:
            self._handle(matched, kept, control)

    def _handle(self, matched: list[Delivery], kept: list[Delivery], control: Control) -> None:
        seq = self.confirms.seq if self.confirms is not None else 0
        if matched:
            if self.move_to is not None and self.confirms is not None:
                seq = self.confirms.publish(self.move_to, [(without_count(p), body) for _, p, body in matched])
            elif self.take is not None:
                self.take(matched)
        c = self.consumers[-1]
        if self.hold:
            if matched:
                self.awaiting.append((seq, c, [d[0].delivery_tag for d in matched], len(matched)))
        else:
            if kept and self.confirms is not None:
                seq = self.confirms.publish(self.queue, [(without_count(p), body) for _, p, body in kept])
            last = max(part[-1][0].delivery_tag for part in (matched, kept) if part)
            self.awaiting.append((seq, c, last, len(matched)))
        self._settle()
        control.tick(len(matched) + len(kept))

    def _settle(self) -> None:
        """Ack, in order, what is settled: copies all confirmed, and no ack can let in a copy."""
        confirmed = 0
        if self.confirms is not None:
            self.confirms.check()
            confirmed = self.confirms.confirmed
        while self.awaiting and self.awaiting[0][0] <= confirmed:
            _, c, tags, selected = self.awaiting[0]
            if isinstance(tags, list):
                if c.tag is not None:
                    return  # its segment is still being delivered (see the module docstring)
                for tag in tags:
                    c.ack(tag)
            else:
                # Every delivery up to tag ``tags`` is settled.  Delivery tags count this
                # channel's deliveries from 1, so acking up to n0 - prefetch while the
                # consumer runs lets the broker deliver n0 at most: never a copy of ours.
                last = tags if c.tag is None else min(tags, self.n0 - min(WINDOW, self.n0))
                if last > c.acked:
                    c.ack(last, multiple=True, count=last - c.acked)
                if last < tags:
                    return
            self.awaiting.popleft()
            self.result.done += selected

    def _tend(self) -> bool:
        """Between polls: settle what is confirmed; True while confirms are awaited."""
        self._settle()
        if self.confirms is None or self.confirms.confirmed >= self.confirms.seq:
            return False
        now, confirmed = time.monotonic(), self.confirms.confirmed
        if confirmed != self._progress[1]:
            self._progress = (now, confirmed)
        elif now - self._progress[0] > WAIT_SECONDS:
            raise BrokerUnavailable(f"RabbitMQ confirmed nothing for {WAIT_SECONDS:g} s while walking "
                                    f"{self.queue!r}; nothing unconfirmed was removed")
        return True

    def finish(self) -> int:
        """Wait for the last confirms, ack, return everything else; the queue's depth after that,
        once RabbitMQ shows it (settle.py: the command ends when the queue is whole)."""
        if self.confirms is not None:
            self.confirms.wait()
        for c in self.consumers:
            c.stop()
        self._settle()
        held = sum(c.held() for c in self.consumers)
        # before the nacks: RabbitMQ requeues asynchronously, a count after them would lag
        depth = self.consumers[0].depth()
        for c in self.consumers:
            give_back(c)
            c.close()
        if self.publisher is not None:
            self.publisher.close()
        if held:
            wait_until_back(self.b, self.queue, depth + held, others=self.others)
        return depth + held

    def abandon(self) -> None:
        """After an error: give back what we can; if the connection is gone the broker does it."""
        for c in self.consumers:
            try:
                if c.ch.is_open:
                    c.stop()
                    give_back(c)
                    c.close()
            except CeleryToolError:
                pass
        if self.publisher is not None:
            try:
                self.publisher.close()
            except CeleryToolError:
                pass
