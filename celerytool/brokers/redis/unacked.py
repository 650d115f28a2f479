"""kombu's in-flight messages on Redis: the ``unacked`` hash, listed and requeued.

requeue is kombu's ``restore_by_tag`` as one script per message (RESTORE),
under the ``unacked_mutex`` lock that kombu's own visibility sweep takes.
Mixed into ``RedisOps``, which provides ``b`` (the broker, as ``link.RedisLink``) and ``call``.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from celerytool.brokers.base import Control, OpResult
from celerytool.brokers.redis.delayed_fast import SKIP, Routes, fast_delayed
from celerytool.brokers.redis.routing import BindingTables, text
from celerytool.bulk import gc_paused
from celerytool.codecs.lazy import EnvelopeView
from celerytool.errors import CeleryToolError
from celerytool.model import DelayedTask, Message
from celerytool.selection import Selection
from celerytool.timefmt import epoch, utc_iso

if TYPE_CHECKING:
    from redis.connection import Connection

    from celerytool.brokers.redis.link import RedisLink

UNACKED, UNACKED_INDEX, UNACKED_MUTEX = "unacked", "unacked_index", "unacked_mutex"
MUTEX_EXPIRE = 300  # kombu's unacked_mutex_expire
PAGE = 1000
INDEX_PAGE = 10_000
UNACKED_COUNT_MAX = 50_000  # metrics: read every entry to count them by queue up to this many


class RedisUnacked:
    b: RedisLink
    tables: BindingTables

    def call(self, name: str, keys: list[str], args: list[Any]) -> Any: ...  # pragma: no cover

    def unacked(self, queue: str | None, selection: Selection) -> Iterator[Message]:
        count = 0
        for view in self._unacked_views(queue):
            if selection.limit is not None and count >= selection.limit:
                return
            if selection.matches(view):
                count += 1
                yield view.message()

    def requeue(self, queue: str | None, selection: Selection, control: Control, *,
                lock_wait: float = 10.0) -> OpResult:
        from kombu.utils.json import dumps, loads

        result = OpResult("requeue", queue, dry_run=control.dry_run)
        with self._mutex(control.dry_run, lock_wait):
            for view in self._unacked_views(queue):
                if control.stop():
                    result.interrupted = True
                    break
                if selection.limit is not None and result.matched >= selection.limit:
                    break
                result.examined += 1
                control.tick(1)
                if not selection.matches(view):
                    continue
                result.matched += 1
                if control.dry_run:
                    if control.on_match:
                        control.on_match(view.message())
                    continue
                extra = view.extra or {}
                targets = extra.get("queues") or []
                if not targets:
                    self.b.warnings.append(f"kept {extra.get('delivery_tag')} in unacked: exchange "
                                           f"{extra.get('exchange')!r} routes {extra.get('routing_key')!r} nowhere")
                    result.skipped += 1
                    continue
                env, ex, rk = loads(text(view.raw))
                try:  # kombu's _do_restore_message, verbatim in effect
                    env["headers"]["redelivered"] = True
                    env["properties"]["delivery_info"]["redelivered"] = True
                except (KeyError, TypeError):
                    pass
                prio = _kombu_priority(env)
                keys = [self.b.bucket_key(q, self.b.priority_bucket(prio)) for q in targets]
                ok = self.call("RESTORE", [self._key(UNACKED), self._key(UNACKED_INDEX), *keys],
                               [extra["delivery_tag"], view.raw, dumps(env)])
                self.b.confirm_writes()  # through Sentinel: a replica has it, or it is not counted
                if int(ok):
                    result.done += 1
                else:
                    result.vanished += 1  # acked or restored by its worker meanwhile
        return result

    def delayed(self, queue: str | None, selection: Selection, visibility_timeout: float) -> list[DelayedTask]:
        """ETA tasks a worker holds in ``unacked`` until they are due, soonest first.

        kombu's visibility sweep puts back an entry delivered longer ago than the
        visibility timeout: a task due later than delivery + timeout is delivered
        to a worker again before it runs (``delivered_again``: it can run twice).
        A plain JSON protocol-2 entry is read from its bytes (``delayed_fast``); any
        other goes through the full decoder.
        """
        now = time.time()
        out: list[DelayedTask] = []
        append = out.append
        with gc_paused():
            self._delayed_into(append, queue, selection, visibility_timeout, now)
        out.sort(key=_LEFT)  # every left is a number here
        return out if selection.limit is None else out[:selection.limit]  # the soonest N

    def _delayed_into(self, append: Callable[[DelayedTask], None], queue: str | None, selection: Selection, visibility_timeout: float,
                      now: float) -> None:
        routes: Routes = {}
        route = self.route
        fast = selection.is_all
        undecodable: list[str] = []
        for tags, scores, values in self._unacked_pages():
            for tag, score, raw in zip(tags, scores, values, strict=True):
                if raw is None:
                    continue
                delivered = float(score)
                task = fast_delayed(raw, now, delivered, visibility_timeout, routes, route, queue) if fast else None
                if task is None:
                    view = self._view(tag, delivered, raw, now)
                    if queue is not None and queue not in (view.extra or {})["queues"]:
                        continue
                    m = view.message()
                    if m.error is not None:
                        undecodable.append(m.error)
                        continue
                    due = epoch(m.eta)
                    if due is None or not selection.matches(view):
                        continue
                    task = DelayedTask(m.id, m.task, m.args, m.kwargs, view.queue, utc_iso(due), due - now,
                                       "unacked", due - delivered > visibility_timeout)
                elif task is SKIP:
                    continue
                append(task)
        if undecodable:  # it may be a delayed task: say so rather than leave it out unseen
            self.b.warnings.append(f"{len(undecodable)} unacked entr{'y' if len(undecodable) == 1 else 'ies'} could "
                                   f"not be decoded and {'is' if len(undecodable) == 1 else 'are'} not listed "
                                   f"({undecodable[0]}); `celerytool unacked` shows them")

    def in_flight_count(self) -> int:
        """How many entries kombu's ``unacked`` hash holds (HLEN)."""
        with self.b.errors():
            return int(self.b.client.hlen(self._key(UNACKED)))

    def unacked_counts(self, most: int = UNACKED_COUNT_MAX) -> dict[str, int] | None:
        """Entries of the ``unacked`` hash by the queue they return to (``metrics``); None when
        the hash has more than ``most`` entries (counting would read them all)."""
        client, key = self.b.client, self._key(UNACKED)
        with self.b.errors():
            total = int(client.hlen(key))
        if total > most:
            self.b.warnings.append(f"{total} unacked entries (more than {most}): not counted by queue")
            return None
        out: dict[str, int] = {}
        cursor = 0
        while True:
            with self.b.errors():
                cursor, reply = client.hscan(key, cursor, count=PAGE)
            page = cast("dict[bytes, bytes]", reply)  # no decode_responses: redis-py's "bytes | str" is bytes
            for raw in page.values():
                ex, rk = _entry_route(raw)
                for queue in (self.route(ex, rk) if ex is not None else []):
                    out[queue] = out.get(queue, 0) + 1
            if not int(cursor):
                return out

    def _key(self, name: str) -> str:
        return self.b.prefix + name

    def _mutex(self, dry_run: bool, wait: float) -> AbstractContextManager[None]:
        import contextlib

        if dry_run:
            return contextlib.nullcontext()
        return _Mutex(self, wait)

    def _unacked_entries(self) -> Iterator[tuple[bytes, float, bytes]]:
        """(delivery tag, delivery time, stored entry) of kombu's ``unacked`` hash, oldest
        delivery first (a snapshot of ``unacked_index``: requeue removes entries as it goes)."""
        for tags, scores, values in self._unacked_pages():
            for tag, score, raw in zip(tags, scores, values, strict=True):
                if raw is not None:
                    yield tag, float(score), raw

    def _unacked_pages(self) -> Iterator[tuple[list[bytes], list[Any], list[bytes | None]]]:
        """``_unacked_entries`` by pages of PAGE: (tags, delivery times, stored entries or None).

        One connection, read ahead: the next page's HMGET is sent before this page is handed
        out, so Redis builds it while the caller works on this one."""
        index_key, hash_key = self._key(UNACKED_INDEX), self._key(UNACKED)
        pool = self.b.client.connection_pool
        with self.b.errors():
            conn = pool.get_connection()
        pending = False
        try:
            with self.b.errors():
                index: list[Any] = []
                while True:  # the whole index first: a snapshot
                    start = len(index) // 2
                    conn.send_command("ZRANGE", index_key, start, start + INDEX_PAGE - 1, "WITHSCORES")
                    page = conn.read_response()
                    if page and page[0].__class__ is list:  # RESP3: [[tag, score], ...]
                        page = [x for pair in page for x in pair]
                    index += page
                    if len(page) < 2 * INDEX_PAGE:
                        break
            tags, scores = index[0::2], index[1::2]
            del index
            seen = 0
            send = _sender(conn)
            for start in range(0, len(tags), PAGE):
                with self.b.errors():
                    if not pending:
                        send(("HMGET", hash_key, *tags[start:start + PAGE]))
                    values = conn.read_response()
                    pending = False
                    if start + PAGE < len(tags):
                        send(("HMGET", hash_key, *tags[start + PAGE:start + 2 * PAGE]))
                        pending = True
                seen += len(values) - values.count(None)
                yield tags[start:start + PAGE], scores[start:start + PAGE], values
            with self.b.errors():
                conn.send_command("HLEN", hash_key)
                total = int(conn.read_response())
        finally:
            if pending:  # an unread reply: this connection cannot be reused
                conn.disconnect()
            pool.release(conn)
        if total > seen:
            self.b.warnings.append(f"{total - seen} unacked entries have no unacked_index score "
                                   "(not listed; kombu's visibility sweep never restores them)")

    def _view(self, tag: bytes, score: float, raw: bytes, now: float) -> EnvelopeView:
        ex, rk = _entry_route(raw)
        targets = self.route(ex, rk) if ex is not None else []
        delivered_at = _iso(score)
        age = None if delivered_at is None else now - score  # no date: no age (not selected by one)
        extra = {"delivery_tag": text(tag), "exchange": ex, "routing_key": rk,
                 "delivered_at": delivered_at, "age": None if age is None else round(age, 3), "queues": targets}
        return EnvelopeView(raw, targets[0] if targets else None, None, self.b.options.limits, age=age,
                            extra=extra)

    def _unacked_views(self, queue: str | None) -> Iterator[EnvelopeView]:
        """Entries of kombu's ``unacked`` hash, oldest delivery first."""
        now = time.time()
        for tag, score, raw in self._unacked_entries():
            view = self._view(tag, score, raw, now)
            if queue is not None and queue not in (view.extra or {}).get("queues", []):
                continue
            yield view

    def route(self, exchange: str, routing_key: str) -> list[str]:
        """The queues kombu's restore would push to (its ``_lookup``; see ``routing``)."""
        return self.tables.route(exchange, routing_key)


class _Mutex:
    """kombu's ``unacked_mutex`` (a redis-py Lock, as kombu's Mutex takes it)."""

    def __init__(self, ops: RedisUnacked, wait: float) -> None:
        self.wait = wait
        self.lock = ops.b.client.lock(ops._key(UNACKED_MUTEX), timeout=MUTEX_EXPIRE)
        self.ops = ops

    def __enter__(self) -> None:
        with self.ops.b.errors():
            if not self.lock.acquire(blocking=self.wait > 0, blocking_timeout=self.wait):
                raise CeleryToolError("unacked_mutex is held (a worker is restoring unacked "
                                      "messages right now); try again in a minute")

    def __exit__(self, *exc: Any) -> None:
        try:
            self.lock.release()
        except Exception:  # expired meanwhile: nothing to release
            pass


_LEFT = operator.attrgetter("left")


def _sender(conn: Connection) -> Callable[[tuple[Any, ...]], None]:
    """Send one command on a redis-py connection, packed by hiredis (a dependency, through
    ``redis[hiredis]``) where redis-py's own packer costs three times as much per argument."""
    try:
        from hiredis import pack_command
    except ImportError:  # redis-py works without it; so does this, slower
        return lambda args: conn.send_command(*args)
    return lambda args: conn.send_packed_command([pack_command(args)])


def _iso(seconds: float) -> str | None:
    """A delivery time; None for an unacked_index score no date holds (inf, 1e300: not kombu's)."""
    try:
        return utc_iso(seconds)
    except (OverflowError, ValueError, OSError):
        return None


def _entry_route(raw: bytes) -> tuple[str | None, str]:
    try:
        entry = json.loads(raw)
        return str(entry[1] or ""), str(entry[2] or "")
    except (ValueError, TypeError, IndexError, KeyError, RecursionError):
        return None, ""


def _kombu_priority(env: dict[str, Any]) -> int:
    """kombu's ``_get_message_priority``: properties.priority clamped to 0..9, else 0."""
    try:
        return max(min(int(env["properties"]["priority"]), 9), 0)
    except (TypeError, ValueError, KeyError, OverflowError):  # OverflowError: a priority of 1e999
        return 0


_fast_delayed = fast_delayed  # the name tests/test_delayed.py reads
