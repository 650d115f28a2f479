"""Purge, move, export and import on RabbitMQ.

Without a selection, purge is ``queue.purge``.  A selected purge, a move and
``export --remove`` walk the queue (``walk.Walk``: consume, act, confirm, and
only then ack); on classic queues the messages that stay are held unacked and
returned in place at the end, on other queues they are re-published.
``--dry-run`` and a plain export read as peek does (``peek.Peek``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from celerytool.brokers.amqp.confirm import Confirms
from celerytool.brokers.amqp.consume import Consumer
from celerytool.brokers.amqp.peek import Peek
from celerytool.brokers.amqp.properties import (
    Delivery,
    from_record,
    origin_queue,
    task_and_id,
    to_message,
    to_record,
    without_death_headers,
)
from celerytool.brokers.amqp.walk import BATCH, Take, Walk, can_hold
from celerytool.brokers.base import Broker, Control, ExportRecord, OpResult
from celerytool.brokers.transfer import amqp_to_outgoing, record_to_outgoing
from celerytool.errors import CeleryToolError, DataError, Unsupported, UsageError
from celerytool.model import DelayedTask, Message
from celerytool.selection import MessageView, Selection

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink


class AmqpOps:
    def __init__(self, broker: AmqpLink) -> None:
        self.b = broker
        # hold the messages that stay unacked (True) or re-publish them (False); None: hold on
        # classic queues only (the benchmark sets it to measure both ways)
        self.hold_kept: bool | None = None

    # -- purge ------------------------------------------------------------------------
    def purge(self, queue: str, selection: Selection, control: Control) -> OpResult:
        selection.require_no_age("queued RabbitMQ messages")
        n0 = self.b.depth(queue)
        if control.dry_run:
            return self._scan(queue, selection, control, "purge", n0)
        if selection.empty:
            self._refuse_stream(queue, "a purge", "RabbitMQ refuses queue.purge on a stream")
            ch = self.b.channel()
            with self.b.errors(f"purging {queue!r}"):
                n = int(ch.queue_purge(queue).method.message_count)
                ch.close()
            control.tick(n)
            return OpResult("purge", queue, examined=n, matched=n, done=n, kept=0)
        return self._walk(queue, selection, control, "purge", n0)

    # -- move -------------------------------------------------------------------------
    def move(self, src: str, dst: str, selection: Selection, control: Control, *,
             target: Broker | None = None, keep_routing: bool = False) -> OpResult:
        """keep_routing has no meaning here: an AMQP message carries no delivery_info."""
        selection.require_no_age("queued RabbitMQ messages")
        other = None if target is None or target.url == self.b.url else target
        if other is None and src == dst:
            raise UsageError("source and destination are the same queue")
        n0 = self.b.depth(src)
        (self.b if other is None else other).check_destination(dst)
        if control.dry_run:
            return self._scan(src, selection, control, "move", n0)

        if other is None:
            result = self._walk(src, selection, control, "move", n0, move_to=dst)
        else:
            def take(matched: list[Delivery]) -> None:  # another broker: published and confirmed now
                if isinstance(other, type(self.b)):
                    republish(other, dst, matched)
                else:
                    other.publish([amqp_to_outgoing(to_record(props), body, dst) for _, props, body in matched])

            result = self._walk(src, selection, control, "move", n0, take=take)
        result.extra = {"to": dst, **({"to_broker": other.url.redacted()} if other is not None else {})}
        return result

    def move_to_origin(self, src: str, selection: Selection, control: Control) -> OpResult:
        """Each selected dead-lettered message back on the queue of its latest ``x-death`` entry.

        Published without the dead-lettering headers (as Celery's own retry
        does), confirmed, then acked: at-least-once, as every RabbitMQ move.
        A message without ``x-death`` is not selected (it stays).
        """
        selection.require_no_age("queued RabbitMQ messages")
        selection = selection.and_where("x_death != null")
        n0 = self.b.depth(src)
        if control.dry_run:
            return self._scan(src, selection, control, "move", n0)
        checked: set[str] = set()

        def take(matched: list[Delivery]) -> None:
            by_origin: dict[str, list[Delivery]] = {}
            for method, props, body in matched:
                origin = origin_queue(props)
                if origin is None:  # cannot happen: the selection requires x-death
                    raise DataError("a dead-lettered message without an x-death queue")
                by_origin.setdefault(origin, []).append((method, without_death_headers(props), body))
            for origin, deliveries in by_origin.items():
                if origin not in checked:
                    self.b.check_destination(origin)
                    checked.add(origin)
                republish(self.b, origin, deliveries)

        result = self._walk(src, selection, control, "move", n0, take=take)
        result.extra = {"to": "origin"}
        return result

    # -- export / import ----------------------------------------------------------------
    def export(self, queue: str, selection: Selection, control: Control,
               write: Callable[[Iterable[ExportRecord]], None], *, remove: bool = False) -> OpResult:
        selection.require_no_age("queued RabbitMQ messages")
        n0 = self.b.depth(queue)
        if not remove or control.dry_run:
            sink = None if control.dry_run else write
            return self._scan(queue, selection, control, "export", n0, sink=sink)

        def take(matched: list[Delivery]) -> None:
            write([self.record(queue, d) for d in matched])  # flushed and fsynced before the ack

        return self._walk(queue, selection, control, "export", n0, take=take)

    def record(self, queue: str, delivery: Delivery, message: Message | None = None) -> ExportRecord:
        _, props, body = delivery
        return ExportRecord("amqp", queue, int(props.priority or 0), body, {}, amqp=to_record(props),
                            message=message or to_message(queue, 0, delivery, self.b.options.limits))

    def import_(self, queue: str, records: Iterable[ExportRecord], control: Control, *,
                keep_routing: bool = False) -> OpResult:
        """Publish each record unchanged to ``queue`` (default exchange), with confirms."""
        self.b.depth(queue)  # NotFound before anything is published
        result = OpResult("import", queue, dry_run=control.dry_run)
        channel = None if control.dry_run else Consumer(self.b, queue, None, f"importing into {queue!r}")
        confirms = None if channel is None else Confirms(channel)
        pending: list[tuple[Any, bytes]] = []
        previous = 0  # confirm sequence number of the batch before the last one

        def flush(wait: bool = False) -> None:
            nonlocal previous
            if confirms is not None:
                if pending:
                    seq = confirms.publish(queue, pending)
                    confirms.wait(previous)  # the batch before this one: one batch in flight
                    previous = seq
                if wait:
                    confirms.wait()
            result.done += len(pending)
            control.tick(len(pending))
            pending.clear()

        try:
            for rec in records:
                if control.stop():
                    result.interrupted = True
                    break
                result.examined += 1
                result.matched += 1
                if rec.broker == "amqp":
                    pending.append((from_record(rec.amqp or {}), rec.raw))
                elif rec.broker == "redis":
                    outgoing = record_to_outgoing(rec, queue)
                    flush(wait=True)  # file order
                    if confirms is not None:
                        self.b.publish([outgoing])
                    result.done += 1
                else:
                    raise DataError(f"cannot import a {rec.broker} export into RabbitMQ")
                if len(pending) >= BATCH:
                    flush()
            flush(wait=True)
        finally:
            if channel is not None:
                try:
                    channel.close()
                except CeleryToolError:
                    pass
        return result

    # -- delayed work -----------------------------------------------------------------
    def delayed(self, queue: str | None, selection: Selection, visibility_timeout: float) -> list[DelayedTask]:
        """Tasks waiting in Celery's native delayed-delivery levels, soonest first, read as peek
        reads (nothing removed; on quorum levels within the delivery budget, see peek.py)."""
        from celerytool.brokers.amqp.delayed import delayed_in, level_queues

        selection.require_no_age("queued RabbitMQ messages")
        levels = level_queues()
        counts = self.b.passive_counts([name for _, name in levels])

        def picked(name: str) -> Iterator[Message]:
            return (m for m in self.b.peek(name, None) if selection.matches(MessageView(m)))

        found = delayed_in(((lv, picked(name)) for lv, name in levels if counts.get(name, (0, 0))[0]), queue)
        found.sort(key=lambda d: d.left if d.left is not None else float("inf"))
        return found[: selection.limit] if selection.limit is not None else found

    # -- Redis only ---------------------------------------------------------------------
    def unacked(self, queue: str | None, selection: Selection) -> Iterator[Message]:
        raise Unsupported(self.b.capabilities.in_flight_note)

    def requeue(self, queue: str | None, selection: Selection, control: Control, *,
                lock_wait: float = 10.0) -> OpResult:
        raise Unsupported(self.b.capabilities.in_flight_note)

    # -- the two ways of reading -----------------------------------------------------------
    def _scan(self, queue: str, selection: Selection, control: Control, action: str, n0: int,
              sink: Callable[[list[ExportRecord]], None] | None = None) -> OpResult:
        """Read-only, as peek: fetch without ack, select, give everything back with nack."""
        result = OpResult(action, queue, dry_run=control.dry_run)
        chunk: list[ExportRecord] = []
        limits = self.b.options.limits
        if n0 > 0:
            peek = Peek(self.b, queue, n0)
            deliveries = peek.deliveries()
            try:
                for position, d in enumerate(deliveries):
                    if control.stop():
                        result.interrupted = True
                        break
                    if _full(selection, result):
                        break
                    result.examined += 1
                    m = None
                    if selection.is_all:
                        hit = True
                    elif selection.by_name_only and (names := task_and_id(d[1])) is not None:
                        hit = selection.matches_name(names)  # protocol 2: no body decode
                    else:
                        m = to_message(queue, position, d, limits)
                        hit = selection.matches(MessageView(m))
                    if hit:
                        result.matched += 1
                        if control.on_match or sink is not None:
                            full = m or to_message(queue, position, d, limits)
                            if control.on_match:
                                control.on_match(full)
                            if sink is not None:
                                chunk.append(self.record(queue, d, full))
                                if len(chunk) >= BATCH:
                                    sink(chunk)
                                    chunk = []
                    control.tick(1)
                if sink is not None and chunk:
                    sink(chunk)
            finally:
                deliveries.close()
                peek.finish()
        result.done = 0 if control.dry_run else result.matched
        result.kept = n0 - result.done if action in ("purge", "move") else None
        return result

    def _refuse_stream(self, queue: str, what: str, also: str) -> str | None:
        """The queue's type; UsageError for a change no stream allows."""
        qtype = self.b.queue_type(queue)
        if qtype == "stream":
            raise UsageError(
                f"queue {queue!r} is a stream queue: a stream keeps every message whatever consumers do "
                f"(only its retention limits remove any), so {what} cannot take messages out of it "
                f"({also}); read it with `peek` or `export` without --remove")
        return qtype

    def _walk(self, queue: str, selection: Selection, control: Control, action: str, n0: int, *,
              move_to: str | None = None, take: Take | None = None) -> OpResult:
        """Consume at most ``n0`` messages: see walk.py."""
        result = OpResult(action, queue)
        # before the count: a stream's passive declare counts 0 whatever it holds
        qtype = self._refuse_stream(queue, {"purge": "a selected purge", "move": "a move"}.get(action, "export --remove"),
                                    "and the kept ones would be appended again")
        if n0 <= 0:
            result.kept = self.b.depth(queue)
            return result
        hold = self.hold_kept if self.hold_kept is not None else can_hold(qtype, n0)
        walk = Walk(self.b, queue, n0, hold=hold, move_to=move_to, take=take)
        try:
            walk.run(selection, control, result)
            result.kept = walk.finish()
        except BaseException:
            walk.abandon()
            raise
        return result


def republish(dest: AmqpLink, queue: str, deliveries: list[Delivery]) -> None:
    """basic.publish each body with its own properties to ``queue`` on another RabbitMQ: confirmed."""
    import pika.exceptions as pex

    ch = dest.publisher()
    with dest.errors(f"publishing to {queue!r}"):
        for _, props, body in deliveries:
            try:
                ch.basic_publish("", queue, body, props, mandatory=True)
            except pex.UnroutableError:
                raise CeleryToolError(f"queue {queue!r} refused a message (unroutable: was it deleted?); "
                                      "nothing unconfirmed was removed") from None
            except pex.NackError:
                raise CeleryToolError(f"RabbitMQ refused a message to {queue!r} (basic.nack); "
                                      "nothing unconfirmed was removed") from None


def _full(selection: Selection, result: OpResult) -> bool:
    return selection.limit is not None and result.matched >= selection.limit
