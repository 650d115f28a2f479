"""Purge, move, export and import on RabbitMQ: consume, act, confirm, and only then ack.

AMQP has no way to remove one message from the middle of a queue, so a
selected purge / move / ``export --remove`` consumes the queue on one channel
(manual ack, bounded prefetch) and, for each message:

- selected: dropped (purge), published to the destination with publisher
  confirms (move), or written to the file, flushed and fsynced (export);
- not selected: published again, unchanged (body, properties, headers), to
  the same queue through the default exchange, with confirms.

Each batch is acknowledged only after every copy it needs is confirmed
(``amqp_confirm``: the batch is published, then all its confirms awaited), so a
crash at any point can leave a duplicate, never a loss (at-least-once).  The
walk stops after the number of messages the queue held at the start (and the
prefetch never lets more than that be delivered), so the re-published ones are
not examined again.  Kept messages move to the tail: their order relative to
messages published meanwhile changes, and consumers running at the same time
may receive them in between.  Without a selection, purge is ``queue.purge``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from celerytool.brokers.amqp.confirm import BatchConfirms
from celerytool.brokers.amqp.peek import IDLE_SECONDS, Delivery, Peek
from celerytool.brokers.base import Control, ExportRecord, OpResult
from celerytool.brokers.transfer import amqp_to_outgoing, record_to_outgoing
from celerytool.errors import CeleryToolError, DataError, Unsupported, UsageError
from celerytool.model import Message
from celerytool.selection import MessageView, Selection

if TYPE_CHECKING:
    from celerytool.brokers.amqp.broker import AmqpBroker

BATCH = 500
# every AMQP basic property besides headers, as pika names them
PROPERTIES = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
              "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
              "cluster_id")

# Given the selected deliveries of a batch, do what must be done before they are acked.
Take = Callable[[list[Delivery]], None]


class AmqpOps:
    def __init__(self, broker: AmqpBroker) -> None:
        self.b = broker

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
        return self._walk(queue, selection, control, "purge", n0, None)

    # -- move -------------------------------------------------------------------------
    def move(self, src: str, dst: str, selection: Selection, control: Control, *,
             target: Any = None, keep_routing: bool = False) -> OpResult:
        """keep_routing has no meaning here: an AMQP message carries no delivery_info."""
        selection.require_no_age("queued RabbitMQ messages")
        same = target is None or target.url == self.b.url
        if same and src == dst:
            raise UsageError("source and destination are the same queue")
        dest = self.b if same else target
        n0 = self.b.depth(src)
        dest.check_destination(dst)
        if control.dry_run:
            return self._scan(src, selection, control, "move", n0)

        def take(matched: list[Delivery]) -> None:
            if same:
                self._walk_confirms.publish(dst, [(p, body) for _, p, body in matched])
            elif isinstance(dest, type(self.b)):
                republish(dest._publisher(), dst, matched, dest)
            else:
                dest.publish([amqp_to_outgoing(properties_of(props), body, dst) for _, props, body in matched])

        result = self._walk(src, selection, control, "move", n0, take)
        result.extra = {"to": dst, **({"to_broker": dest.url.redacted()} if not same else {})}
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

        return self._walk(queue, selection, control, "export", n0, take)

    def record(self, queue: str, delivery: Delivery, message: Message | None = None) -> ExportRecord:
        method, props, body = delivery
        return ExportRecord("amqp", queue, int(props.priority or 0), body, {}, amqp=properties_of(props),
                            message=message or self.b._decode(queue, 0, method, props, body))

    def import_(self, queue: str, records: Iterable[ExportRecord], control: Control, *,
                keep_routing: bool = False) -> OpResult:
        """Publish each record unchanged to ``queue`` (default exchange), with confirms."""
        self.b.depth(queue)  # NotFound before anything is published
        result = OpResult("import", queue, dry_run=control.dry_run)
        confirms = None if control.dry_run else BatchConfirms(self.b, self.b.channel())
        pending: list[tuple[Any, bytes]] = []

        def flush() -> None:
            if pending and confirms is not None:
                confirms.publish(queue, pending)
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
                    pending.append((basic_properties(rec.amqp or {}), rec.raw))
                elif rec.broker == "redis":
                    outgoing = record_to_outgoing(rec, queue)
                    flush()  # file order
                    if confirms is not None:
                        self.b.publish([outgoing])
                    result.done += 1
                else:
                    raise DataError(f"cannot import a {rec.broker} export into RabbitMQ")
                if len(pending) >= BATCH:
                    flush()
            flush()
        finally:
            if confirms is not None and confirms.ch.is_open:
                confirms.ch.close()
        return result

    # -- Redis only ---------------------------------------------------------------------
    def unacked(self, queue: str | None, selection: Selection) -> Iterator[Any]:
        raise Unsupported(self.b.capabilities.in_flight_note)

    def requeue(self, queue: str | None, selection: Selection, control: Control, *,
                lock_wait: float = 10.0) -> OpResult:
        raise Unsupported(self.b.capabilities.in_flight_note)

    # -- the two walks ------------------------------------------------------------------
    def _scan(self, queue: str, selection: Selection, control: Control, action: str, n0: int,
              sink: Callable[[list[ExportRecord]], None] | None = None) -> OpResult:
        """Read-only, as peek: fetch without ack, select, give everything back with nack."""
        result = OpResult(action, queue, dry_run=control.dry_run)
        chunk: list[ExportRecord] = []
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
                    m = self.b._decode(queue, position, *d)
                    if selection.is_all or selection.matches(MessageView(m)):
                        result.matched += 1
                        if control.on_match:
                            control.on_match(m)
                        if sink is not None:
                            chunk.append(self.record(queue, d, m))
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

    def _refuse_stream(self, queue: str, what: str, also: str) -> None:
        """UsageError for a change no stream allows (its passive declare counts 0: ask the API)."""
        if self.b.queue_type(queue) == "stream":
            raise UsageError(
                f"queue {queue!r} is a stream: a stream keeps every message whatever consumers do "
                f"(only its retention limits remove any), so {what} cannot take messages out of it "
                f"({also}); read it with `peek` or `export` without --remove")

    def _walk(self, queue: str, selection: Selection, control: Control, action: str, n0: int,
              take: Take | None) -> OpResult:
        """Consume at most ``n0`` messages; ``take`` the selected, re-publish the rest; ack."""
        result = OpResult(action, queue)
        self._refuse_stream(queue, {"purge": "a selected purge", "move": "a move"}.get(action, "export --remove"),
                            "and the kept ones would be appended again")
        if n0 > 0:
            walk = _Walk(self, queue, n0)
            self._walk_confirms = walk.confirms
            try:
                walk.run(selection, control, take, result)
            finally:
                walk.close()
        result.kept = self.b.depth(queue)
        return result


class _Walk:
    """One consumer on one confirm-mode channel; see the module docstring."""

    def __init__(self, ops: AmqpOps, queue: str, n0: int) -> None:
        self.b = ops.b
        self.ops = ops
        self.queue = queue
        self.n0 = n0
        self.seen = 0  # delivered and examined
        self.acked = 0
        self.inbox: deque[Delivery] = deque()
        self.doing = f"walking queue {queue!r}"
        self.ch = self.b.channel()
        self.confirms = BatchConfirms(self.b, self.ch)
        with self.b.errors(self.doing):
            self.ch.basic_qos(prefetch_count=min(BATCH, n0))
            self.tag: str | None = self.ch.basic_consume(
                queue, lambda _c, m, p, body: self.inbox.append((m, p, body)), auto_ack=False)

    def run(self, selection: Selection, control: Control, take: Take | None, result: OpResult) -> None:
        idle_since = time.monotonic()
        position = 0
        while self.seen < self.n0:
            if control.stop():
                result.interrupted = True
                return
            if _full(selection, result):
                return
            if not self.inbox:
                with self.b.errors(self.doing):
                    self.b.connection.process_data_events(time_limit=0.2)
                if not self.inbox:
                    if time.monotonic() - idle_since > IDLE_SECONDS:
                        self.b.warnings.append(
                            f"queue {self.queue!r}: {self.n0 - self.seen} of the {self.n0} message(s) "
                            "it held at the start were taken by another consumer first")
                        return
                    continue
                idle_since = time.monotonic()
            matched: list[Delivery] = []
            kept: list[Delivery] = []
            last = None
            while self.inbox and len(matched) + len(kept) < BATCH and self.seen < self.n0:
                if _full(selection, result):
                    break
                d = self.inbox.popleft()
                self.seen += 1
                result.examined += 1
                last = d[0].delivery_tag
                if self._selected(selection, d, position):
                    matched.append(d)
                    result.matched += 1
                else:
                    kept.append(d)
                position += 1
            if last is None:
                continue
            if matched and take is not None:
                take(matched)
            if kept:
                self.confirms.publish(self.queue, [(p, body) for _, p, body in kept])
            self._ack(last)
            result.done += len(matched)
            control.tick(len(matched) + len(kept))

    def _selected(self, selection: Selection, d: Delivery, position: int) -> bool:
        if selection.is_all:
            return True
        headers = d[1].headers
        if selection.by_name_only and isinstance(headers, dict):  # protocol 2: no body decode
            task, tid = headers.get("task"), headers.get("id")
            if isinstance(task, str) and isinstance(tid, str):
                return selection.matches_name((task, tid))
        return selection.matches(MessageView(self.b._decode(self.queue, position, *d)))

    def _ack(self, last: int) -> None:
        """Ack everything up to ``last``, first making sure no more than n0 can be delivered."""
        left = self.n0 - self.seen
        with self.b.errors(self.doing):
            if left > 0:
                self.ch.basic_qos(prefetch_count=min(BATCH, left))
            else:
                self._cancel()
            self.ch.basic_ack(delivery_tag=last, multiple=True)
        self.acked = self.seen

    def _cancel(self) -> None:
        """Stop the consumer without pika rejecting anything (as amqp_peek does)."""
        if self.tag is None:
            return
        self.ch.basic_qos(prefetch_count=1)
        self.b.connection.process_data_events(time_limit=0)
        self.ch.basic_cancel(self.tag)
        self.tag = None

    def close(self) -> None:
        """Return what was delivered but not handled (nack, requeue), then close the channel.

        If the connection is gone, the broker requeues the unacked messages itself.
        """
        import pika.exceptions as pex

        try:
            if self.ch.is_open:
                self._cancel()
                if self.inbox or self.seen > self.acked:
                    self.ch.basic_nack(delivery_tag=0, multiple=True, requeue=True)
                self.ch.close()
        except (pex.AMQPConnectionError, pex.AMQPChannelError, OSError):
            pass


def republish(ch: Any, queue: str, deliveries: list[Delivery], broker: AmqpBroker) -> None:
    """basic.publish each body with its own properties to ``queue``: confirmed, mandatory."""
    import pika.exceptions as pex

    with broker.errors(f"publishing to {queue!r}"):
        for _, props, body in deliveries:
            try:
                ch.basic_publish("", queue, body, props, mandatory=True)
            except pex.UnroutableError:
                raise CeleryToolError(f"queue {queue!r} refused a message (unroutable: was it deleted?); "
                                      "nothing unconfirmed was removed") from None
            except pex.NackError:
                raise CeleryToolError(f"RabbitMQ refused a message to {queue!r} (basic.nack); "
                                      "nothing unconfirmed was removed") from None


def properties_of(props: Any) -> dict[str, Any]:
    """Every AMQP property of a delivery that is set, headers included."""
    out = {k: getattr(props, k) for k in PROPERTIES if getattr(props, k, None) is not None}
    if props.headers is not None:
        out["headers"] = props.headers
    return out


def basic_properties(meta: dict[str, Any]) -> Any:
    """pika BasicProperties from an export record's ``amqp`` field (tagged JSON values)."""
    import pika

    values = {k: untag(meta[k]) for k in (*PROPERTIES, "headers") if meta.get(k) is not None}
    try:
        return pika.BasicProperties(**values)
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad AMQP properties in export record: {exc}") from None


def untag(value: Any) -> Any:
    """Undo ``to_jsonable`` for the types AMQP field tables carry (bytes, timestamps, decimals)."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__type__")
    if kind is None or set(value) != {"__type__", "__value__"}:
        return {k: untag(v) for k, v in value.items()}
    v = value["__value__"]
    if kind == "bytes":
        return str(v).encode("utf-8")
    if kind == "base64":
        import base64

        return base64.b64decode(v)
    if kind == "datetime":
        import datetime

        return datetime.datetime.fromisoformat(v)
    if kind == "decimal":
        import decimal

        return decimal.Decimal(v)
    if kind == "float":
        return float(v)
    return value


def _full(selection: Selection, result: OpResult) -> bool:
    return selection.limit is not None and result.matched >= selection.limit
