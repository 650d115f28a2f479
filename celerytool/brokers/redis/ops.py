"""Purge, move, export, import, unacked and requeue on kombu's Redis layout.

What is atomic (see ``redis_lua`` for the scripts):

- purge without a selection: one script counts and deletes the priority lists.
- a selected purge / move / ``export --remove`` walks each priority list:
  it reads a window at the tail, selects, and one script (WALK) pops that
  window and pushes the kept messages back at the head, the selected ones to
  the destination list (move) or nowhere (purge).  A kill -9 at any point
  leaves each message in exactly one list.  A stopped walk (Ctrl-C, --limit)
  rotates the rest (ROTATE) so the order is as before.
  Messages pushed while a walk runs may be examined too, and end up ahead of
  the kept messages not yet walked (kept messages keep their relative order).
- move to another broker, ``export --remove``: at-least-once.  The copy is
  published (Redis replies, AMQP confirms) or the file line flushed and
  fsynced *before* the message is removed, so a crash in between can leave a
  duplicate, never a loss.
- requeue: see ``redis_unacked``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from celerytool.brokers.base import Broker, Control, ExportRecord, OpResult
from celerytool.brokers.redis import lua as redis_lua
from celerytool.brokers.redis.unacked import RedisUnacked
from celerytool.brokers.transfer import publish_across, record_to_outgoing
from celerytool.codecs.lazy import EnvelopeView, fast_task_id
from celerytool.codecs.message import decode_envelope
from celerytool.errors import BrokerUnavailable, Unsupported, UsageError
from celerytool.selection import Selection

if TYPE_CHECKING:
    from redis.commands.core import Script

    from celerytool.brokers.redis.link import RedisLink
    from celerytool.model import OutgoingMessage

BATCH = 1000
FAILOVER_WALKS = 3  # through Sentinel: walks started again after a failover
FINISH_STEP = 5000

# Given a priority bucket and the selected messages (after any publish / write the
# change needs first), say what the WALK script does with them: (destination list,
# args) -- (None, [raw, ...]) drops them, (key, [raw, new, ...]) moves them there.
Act = Callable[[int, list[bytes]], tuple[str | None, list[bytes]]]


class RedisOps(RedisUnacked):
    def __init__(self, broker: RedisLink) -> None:
        self.b = broker
        self._scripts: dict[str, Script] = {}
        self.tables = broker.binding_tables()

    def script(self, name: str) -> Script:
        if name not in self._scripts:
            self._scripts[name] = self.b.client.register_script(getattr(redis_lua, name))
        return self._scripts[name]

    def call(self, name: str, keys: list[str], args: list[bytes | str | int]) -> Any:  # the script's reply
        with self.b.errors():
            return self.script(name)(keys=keys, args=args)

    def view(self, raw: bytes, queue: str, bucket: int, **kw: Any) -> EnvelopeView:
        return EnvelopeView(raw, queue, bucket, self.b.options.limits, **kw)

    # -- purge ------------------------------------------------------------------------
    def purge(self, queue: str, selection: Selection, control: Control) -> OpResult:
        selection.require_no_age("queued Redis messages")
        lengths = self.b.lengths(queue)
        self.b.require_queue(queue, lengths)
        if control.dry_run:
            return self._scan(queue, selection, control, "purge", lengths)
        if selection.empty:
            n = self.call("PURGE_ALL", [k for _, k, _ in lengths], [])
            self.b.confirm_writes()
            control.tick(int(n))
            return OpResult("purge", queue, examined=int(n), matched=int(n), done=int(n), kept=0)

        def act(bucket: int, matched: list[bytes]) -> tuple[str | None, list[bytes]]:
            return None, matched

        return self._walk(queue, selection, control, "purge", lengths, act)

    # -- move -------------------------------------------------------------------------
    def move_to_origin(self, src: str, selection: Selection, control: Control) -> OpResult:
        raise Unsupported("Redis keeps no dead-lettering history (x-death is RabbitMQ's): "
                          "give a destination queue")

    def move(self, src: str, dst: str, selection: Selection, control: Control, *,
             target: Broker | None = None, keep_routing: bool = False) -> OpResult:
        selection.require_no_age("queued Redis messages")
        other = None if target is None or target.url == self.b.url else target
        if other is None and src == dst:
            raise UsageError("source and destination are the same queue")
        lengths = self.b.lengths(src)
        self.b.require_queue(src, lengths)
        (self.b if other is None else other).check_destination(dst)
        if control.dry_run:
            return self._scan(src, selection, control, "move", lengths)

        def routed(raw: bytes) -> bytes:
            return raw if keep_routing else reroute(raw, dst)

        if other is None:
            def act(bucket: int, matched: list[bytes]) -> tuple[str | None, list[bytes]]:
                args: list[bytes] = []
                for raw in matched:
                    args += [raw, routed(raw)]
                return self.b.bucket_key(dst, bucket), args
        else:
            def act(bucket: int, matched: list[bytes]) -> tuple[str | None, list[bytes]]:
                publish_copies(other, dst, bucket, [routed(r) for r in matched], source=self.b)
                return None, matched

        result = self._walk(src, selection, control, "move", lengths, act)
        result.extra = {"to": dst, **({"to_broker": other.url.redacted()} if other is not None else {})}
        return result

    # -- export / import ----------------------------------------------------------------
    def export(self, queue: str, selection: Selection, control: Control,
               write: Callable[[Iterable[ExportRecord]], None], *, remove: bool = False) -> OpResult:
        selection.require_no_age("queued Redis messages")
        lengths = self.b.lengths(queue)
        self.b.require_queue(queue, lengths)

        def records(bucket: int, raws: list[bytes]) -> Iterator[ExportRecord]:
            # a generator: each line is written as it is made (cache-friendly)
            limits = self.b.options.limits
            for raw in raws:
                m = decode_envelope(raw, queue=queue, priority=bucket, limits=limits)
                yield ExportRecord("redis", queue, bucket, raw, {}, message=m)

        if not remove or control.dry_run:
            def sink(bucket: int, raws: list[bytes]) -> None:
                if not control.dry_run:
                    write(records(bucket, raws))

            return self._scan(queue, selection, control, "export", lengths, sink=sink)

        def act(bucket: int, matched: list[bytes]) -> tuple[str | None, list[bytes]]:
            write(records(bucket, matched))  # flushed and fsynced before any removal
            return None, matched

        return self._walk(queue, selection, control, "export", lengths, act)

    def import_(self, queue: str, records: Iterable[ExportRecord], control: Control, *,
                keep_routing: bool = False) -> OpResult:
        """Redis records go in byte-exact; RabbitMQ records as kombu's envelope (see ``transfer``)."""
        self.b.lengths(queue)  # DataError when a key of the queue is not a list
        result = OpResult("import", queue, dry_run=control.dry_run)
        pending: list[tuple[str, bytes]] = []
        converted: list[OutgoingMessage] = []  # from another broker: published as kombu would

        def flush() -> None:
            if not control.dry_run:
                if pending:
                    with self.b.errors():
                        pipe = self.b.client.pipeline(transaction=False)
                        for key, raw in pending:
                            pipe.lpush(key, raw)
                        pipe.execute()
                    self.b.confirm_writes()
                if converted:
                    self.b.publish(converted)
            n = len(pending) + len(converted)
            result.done += n
            control.tick(n)
            pending.clear()
            converted.clear()

        for rec in records:
            if control.stop():
                result.interrupted = True
                break
            if rec.broker == "redis":
                if converted:
                    flush()  # file order
                raw = rec.raw if keep_routing else reroute(rec.raw, queue)
                bucket = rec.priority if rec.priority in self.b.steps else self.b.priority_bucket(rec.priority)
                pending.append((self.b.bucket_key(queue, bucket), raw))
            else:
                if pending:
                    flush()
                converted.append(record_to_outgoing(rec, queue))  # DataError for an unknown broker
            result.examined += 1
            result.matched += 1
            if len(pending) + len(converted) >= BATCH:
                flush()
        flush()
        return result

    # -- the two walks ------------------------------------------------------------------
    def _scan(self, queue: str, selection: Selection, control: Control, action: str,
              lengths: list[tuple[int, str, int]],
              sink: Callable[[int, list[bytes]], None] | None = None) -> OpResult:
        """Read-only: count (and list, or hand to ``sink``) the selected messages."""
        result = OpResult(action, queue, dry_run=control.dry_run)
        position = 0
        for bucket, key, length in lengths:
            chunk: list[bytes] = []
            for raw in self.b.iter_list(key, length, None):
                if control.stop() or _full(selection, result):
                    result.interrupted = control.stop()
                    break
                result.examined += 1
                view = self.view(raw, queue, bucket)
                if selection.is_all or selection.matches(view):
                    result.matched += 1
                    if control.on_match:
                        control.on_match(view.message(position))
                    if sink:  # a dry run keeps nothing: the listing holds at most SHOW_AT_MOST
                        chunk.append(raw)
                        if len(chunk) >= BATCH:
                            sink(bucket, chunk)
                            chunk = []
                position += 1
                if position % BATCH == 0:
                    control.tick(BATCH)
            if sink and chunk:
                sink(bucket, chunk)
            if result.interrupted or _full(selection, result):
                break
        control.tick(position % BATCH)
        result.done = 0 if control.dry_run else result.matched
        total = sum(n for _, _, n in lengths)
        result.kept = total - result.done if action in ("purge", "move") else None
        return result

    def _walk(self, queue: str, selection: Selection, control: Control, action: str,
              lengths: list[tuple[int, str, int]], act: Act) -> OpResult:
        """Walk each priority list once, dropping or moving what ``act`` says.

        Through Sentinel, a failover (a batch the new master may lack is refused by
        ``confirm_writes``) starts the walk again on the new master, counting what was
        confirmed before: each message is in exactly one list on every master.
        """
        result = OpResult(action, queue)
        for attempt in range(FAILOVER_WALKS + 1):
            try:
                for bucket, key, n0 in lengths:
                    if n0:
                        self._walk_list(key, bucket, n0, queue, selection, control, act, result)
                    if result.interrupted or _full(selection, result):
                        break
                break
            except BrokerUnavailable as exc:
                if not self.b.url.is_sentinel or attempt == FAILOVER_WALKS:
                    raise
                self.b.warnings.append(f"{exc.message}; walked {queue!r} again on the master the "
                                       f"sentinels name now ({result.done} counted before)")
                time.sleep(1.0 + attempt)
                lengths = self.b.lengths(queue)
                done = result.done  # what is gone was examined and matched once
                result = OpResult(action, queue, examined=done, matched=done, done=done)
        with self.b.errors():
            result.kept = sum(n for _, _, n in self.b.lengths(queue))
        return result

    def _walk_list(self, key: str, bucket: int, n0: int, queue: str, selection: Selection,
                   control: Control, act: Act, result: OpResult) -> None:
        """Read a window at the tail, select, then WALK it: one script per batch.

        The script and the read of the next window go in one round trip.  The
        marker (the kept messages of the first window, as a sequence) ends the
        walk early once consumers have shrunk the list; it is an economy, not
        what keeps it safe.  Without consumers the count alone bounds the walk.
        Selection is by position in the window: identical copies of a message
        are legal in a queue, so bytes alone cannot say where the walk began.
        """
        marker: list[bytes] = []  # the kept messages of the first walked window, in order
        shrunk = False  # a consumer took messages from under the walk: the marker is needed
        rotated = 0
        client = self.b.client
        walk = self.script("WALK")
        with self.b.errors():
            window = cast("list[bytes]", client.lrange(key, -min(BATCH, n0), -1))  # no decode_responses
        try:
            while window and rotated < n0:
                if control.stop():
                    result.interrupted = True
                    break
                if _full(selection, result):
                    break
                items = window[::-1]  # next message first
                if marker and shrunk:
                    items = items[:_wrap_at(items, marker)]
                    if not items:
                        break
                chosen = self._select(items, queue, bucket, selection, result)
                matched = [items[i] for i in chosen]
                dst_key, args = act(bucket, matched) if matched else (None, [])
                per = 2 if dst_key else 1
                placed: list[int | bytes] = []
                for n, i in enumerate(chosen):  # the script selects by position, then checks bytes
                    placed += [i, *args[n * per:(n + 1) * per]]
                deepest = items[-1]
                with self.b.errors():
                    pipe = client.pipeline(transaction=False)
                    walk(keys=[key, dst_key or key],
                         args=[deepest, len(items), "move" if dst_key else "drop",
                               items.count(deepest), *placed],
                         client=pipe)
                    ahead = min(BATCH, n0 - rotated - len(items))
                    if ahead > 0:
                        pipe.lrange(key, -ahead, -1)
                    replies = pipe.execute()
                self.b.confirm_writes()  # a batch the new master may lack is not counted
                popped, done = (int(x) for x in replies[0])
                window = replies[1] if ahead > 0 else []
                rotated += popped
                shrunk = shrunk or popped != len(items)
                result.done += done
                result.vanished += len(matched) - done
                if not marker and popped:
                    gone = set(chosen)
                    marker = [v for i, v in enumerate(items) if i not in gone]
                control.tick(len(items))
        finally:
            if marker and rotated < n0:
                self._finish(key, marker[0] if shrunk else None, n0 - rotated)

    def _select(self, items: list[bytes], queue: str, bucket: int, selection: Selection,
                result: OpResult) -> list[int]:
        """The positions (0 = next) of the selected messages of a window."""
        if selection.is_all and selection.limit is None:
            result.examined += len(items)
            result.matched += len(items)
            return list(range(len(items)))
        if selection.by_name_only and selection.limit is None:
            out = [i for i, raw in enumerate(items)
                   if selection.matches_name(fast_task_id(raw), self.view, raw, queue, bucket)]
            result.examined += len(items)
            result.matched += len(out)
            return out
        out = []
        for i, raw in enumerate(items):
            if _full(selection, result):
                break
            result.examined += 1
            if selection.is_all or selection.matches(self.view(raw, queue, bucket)):
                out.append(i)
                result.matched += 1
        return out

    def _finish(self, key: str, marker: bytes | None, left: int) -> None:
        """Rotate what a stopped walk did not reach (at most ``left``), restoring the order.

        Bounded: if a consumer took the marker meanwhile, the walk would
        otherwise go round forever.
        """
        while left > 0:
            done, reached = self.call("ROTATE", [key], [min(left, FINISH_STEP), marker or b"",
                                                        "1" if marker is not None else "0", "0"])
            left -= int(done)
            if int(reached) or not int(done):
                return


def _wrap_at(items: list[bytes], kept: list[bytes]) -> int:
    """Where a window reaches the messages the walk kept first (``len(items)`` if it does not).

    Those were pushed back at the head in their order, so they come round as
    that sequence; one message with the same bytes as the first of them is
    not enough (a queue may hold identical copies).
    """
    first = kept[0]
    for i, v in enumerate(items):
        if v == first:
            n = min(len(items) - i, len(kept))
            if items[i:i + n] == kept[:n]:
                return i
    return len(items)


def _full(selection: Selection, result: OpResult) -> bool:
    return selection.limit is not None and result.matched >= selection.limit


_DELIVERY_INFO = re.compile(rb'"delivery_info": \{"exchange": "([^"\\]*)", "routing_key": "([^"\\]*)"')


def reroute(raw: bytes, queue: str) -> bytes:
    """The envelope with ``delivery_info`` pointing at ``queue`` (unchanged if it already does).

    kombu restores an unacked message to where its delivery_info routes, so a
    message moved to another queue must say so, or a worker that dies holding
    it sends it back to the old queue.
    """
    m = _DELIVERY_INFO.search(raw)
    if m is not None:  # kombu's own layout: rewrite in place, as the JSON round trip would
        if m.group(2) == queue.encode("utf-8"):
            return raw
        new_key = json.dumps(queue)[1:-1].encode("utf-8")  # exchange becomes ""
        return raw[:m.start(1)] + raw[m.end(1):m.start(2)] + new_key + raw[m.end(2):]
    try:
        env = json.loads(raw)
        info = env["properties"]["delivery_info"]
        if info.get("routing_key") == queue:
            return raw
        info["exchange"], info["routing_key"] = "", queue
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):  # kept as it is
        return raw
    return json.dumps(env).encode("utf-8")


def publish_copies(dest: Broker, queue: str, bucket: int, raws: list[bytes], *, source: RedisLink) -> None:
    """Publish copies of ``source``'s messages on another broker; return only once it has confirmed them.

    When ``dest`` is another Redis (the same adapter as ``source``), the envelope is copied as it
    is, same bucket."""
    if isinstance(dest, type(source)):
        with dest.errors():
            pipe = dest.client.pipeline(transaction=False)
            for raw in raws:
                pipe.lpush(dest.bucket_key(queue, bucket), raw)
            pipe.execute()  # the replies are Redis's confirmation
        dest.confirm_writes()  # and through Sentinel, a replica's
        return
    publish_across(dest, queue, [ExportRecord("redis", queue, bucket, raw, {}) for raw in raws])
