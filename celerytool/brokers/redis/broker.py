"""Redis broker adapter: kombu's Redis transport layout, read without changing it.

Layout (see shared/reference/celery-wire-format.md section 3): a queue is a
list per priority bucket (``queue``, ``queue<sep>3``, ...), LPUSHed on the
left and consumed from the right, buckets served lowest number first.
Bindings live in ``_kombu.binding.<exchange>`` sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

from celerytool.brokers.base import (
    PAUSE_RECORDS,
    BrokerOptions,
    Capabilities,
    Tick,
    is_internal_queue,
    natural_key,
)
from celerytool.brokers.redis.routing import BINDING_PREFIX, BindingTables, parse_member, text
from celerytool.clients.redispy import connect, glob_escape, redis_errors
from celerytool.errors import DataError, NotFound
from celerytool.model import Binding, Message, OutgoingMessage, PauseRecord, QueueInfo
from celerytool.urls import BrokerURL

if TYPE_CHECKING:  # redis-py is imported when a command first needs the client
    from redis import Redis

    from celerytool.brokers.census import Census
    from celerytool.brokers.redis.ops import RedisOps
    from celerytool.clients.resp import RespClient
    from celerytool.clients.sentinel import WriteFence
    from celerytool.selection import Selection

_T = TypeVar("_T")

PEEK_CHUNK = 1000
SCAN_AUTO_MAX_KEYS = 200_000
READ_RETRIES = 8  # through Sentinel: about 15 s, time for a failover


class RedisBroker:
    kind = "redis"
    capabilities = Capabilities("Redis", in_flight=True, max_priority=9, visibility_timeout=True, keyspace=True)

    def __init__(self, url: BrokerURL, options: BrokerOptions) -> None:
        self.url = url
        self.options = options
        self.prefix = options.global_keyprefix
        self.sep = options.sep
        self.steps = tuple(sorted(options.priority_steps)) or (0,)
        self.warnings: list[str] = []

    @cached_property
    def client(self) -> Redis:
        client = connect(self.url, connect_timeout=self.options.connect_timeout)
        if self.url.is_sentinel:  # whether the master has replicas, before anything is written
            with self.errors():
                self.fence.observe(client)
        return client

    @cached_property
    def fence(self) -> WriteFence:
        from celerytool.clients.resp import RespClient
        from celerytool.clients.sentinel import WriteFence

        return WriteFence(self.url, self.options.connect_timeout, RespClient)

    @cached_property
    def reader(self) -> RespClient:
        """A light client for the listings (queues, bindings), where start-up time
        matters: ``import redis`` alone costs more than the whole listing."""
        from celerytool.clients.resp import RespClient

        timeout = self.options.connect_timeout
        return RespClient(self.url, connect_timeout=timeout, socket_timeout=max(10.0, 2 * timeout))

    def errors(self) -> AbstractContextManager[None]:
        return redis_errors(self.url, "Redis broker")

    def confirm_writes(self) -> None:
        """After a batch of writes: through Sentinel, make sure they survive a failover
        (a replica acknowledged them; see ``clients.sentinel.WriteFence``)."""
        if not self.url.is_sentinel:
            return
        with self.errors():
            self.fence.confirm(self.client)

    def read(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` for a read-only command; through Sentinel it is tried again (on the
        master the sentinels name then) while a failover takes place."""
        from celerytool.clients.sentinel import SentinelsSilent
        from celerytool.errors import BrokerUnavailable

        attempts = 0
        while True:
            try:
                with self.errors():
                    return fn()
            except SentinelsSilent:  # no sentinel answers: no failover to wait for
                raise
            except BrokerUnavailable:
                attempts += 1
                if not self.url.is_sentinel or attempts > READ_RETRIES:
                    raise
                import time

                time.sleep(min(0.1 * 2 ** attempts, 2.0))

    def read_errors(self) -> AbstractContextManager[None]:
        from celerytool.clients.resp import resp_errors

        return resp_errors(self.url, "Redis broker")

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        if "reader" in self.__dict__:
            self.reader.close()

    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """Route and LPUSH as kombu would; see ``redis_publish``."""
        from celerytool.brokers.redis.publish import RedisPublisher

        if "_publisher" not in self.__dict__:
            self._publisher = RedisPublisher(self)
        return self._publisher.publish(messages)

    def ops(self) -> RedisOps:
        """purge, move, export, import, unacked and requeue on this broker."""
        from celerytool.brokers.redis.ops import RedisOps

        return RedisOps(self)

    # -- keys -------------------------------------------------------------------------
    def bucket_key(self, queue: str, bucket: int) -> str:
        """The list holding ``queue``'s messages of one priority bucket (prefixed)."""
        return self.prefix + (queue if bucket == 0 else f"{queue}{self.sep}{bucket}")

    def bucket_keys(self, queue: str) -> list[tuple[int, str]]:
        """(bucket, key) in consumption order: lowest bucket number first."""
        return [(b, self.bucket_key(queue, b)) for b in self.steps]

    def priority_bucket(self, priority: int | None) -> int:
        """kombu's mapping of a 0-9 priority to its bucket."""
        import bisect

        p = max(0, min(9, int(priority or 0)))
        return self.steps[max(0, bisect.bisect(self.steps, p) - 1)]

    # -- bindings ---------------------------------------------------------------------
    def _binding_keys(self) -> list[str]:
        pattern = glob_escape(self.prefix + BINDING_PREFIX) + "*"
        with self.read_errors():
            return sorted(text(k) for k in self.reader.scan_iter(match=pattern, count=1000))

    def bindings(self) -> list[Binding]:
        keys = self._binding_keys()
        if not keys:
            return []
        with self.read_errors():
            replies = self.reader.pipeline([("SMEMBERS", k) for k in keys])
        out: list[Binding] = []
        head = len(self.prefix + BINDING_PREFIX)
        for key, members in zip(keys, replies, strict=False):
            if isinstance(members, Exception):
                self.warnings.append(f"skipped {key!r}: not a set ({members})")
                continue
            exchange = key[head:]
            for member in sorted(text(m) for m in members):
                row = parse_member(member, self.sep)
                if row is None:
                    self.warnings.append(f"skipped odd binding {member!r} in {key!r}")
                    continue
                out.append(Binding(exchange=exchange, routing_key=row.routing_key, pattern=row.pattern,
                                   queue=row.queue))
        return out

    def binding_tables(self) -> BindingTables:
        """kombu's routing tables, read on demand and cached by the returned object."""
        return BindingTables(self._smembers, self.prefix, self.sep)

    def _smembers(self, key: str) -> set[bytes | str]:
        with self.errors():
            return self.client.smembers(key)

    # -- queues -----------------------------------------------------------------------
    def scan_queue_lists(self) -> set[str]:
        """Queues that hold messages but may have no binding (found by list keys)."""
        out: set[str] = set()
        pattern = glob_escape(self.prefix) + "*"
        with self.read_errors():
            for raw in self.reader.scan_iter(match=pattern, count=1000, type_="list"):
                key = text(raw)[len(self.prefix):]
                base, sep, suffix = key.rpartition(self.sep)
                if sep and suffix.isdigit() and int(suffix) in self.steps:
                    key = base
                out.add(key)
        return out

    def queues(self, names: Iterable[str] = (), scan: bool | None = None,
               exact: bool | None = None) -> list[QueueInfo]:  # LLEN: always exact
        named = list(dict.fromkeys(names))
        found = {b.queue for b in self.bindings()}
        if scan is None:  # auto: scan unless the database is large
            with self.read_errors():
                size = int(self.reader.execute("DBSIZE"))
            scan = size <= SCAN_AUTO_MAX_KEYS
            if not scan:
                self.warnings.append(f"{size} keys in this database: queues without a binding are not "
                                     "searched for (use --scan to find them too)")
        if scan:
            found |= self.scan_queue_lists()
        if not self.options.include_internal:
            found = {q for q in found if not is_internal_queue(q)}
        all_names = sorted(found, key=natural_key) + [n for n in named if n not in found]
        if not all_names:
            return []
        with self.read_errors():
            replies = self.reader.pipeline([*(("LLEN", key) for name in all_names
                                              for _, key in self.bucket_keys(name)),
                                            ("HGETALL", self.pause_key)])
        paused = self._pause_records(replies.pop())
        out: list[QueueInfo] = []
        per = len(self.steps)
        for i, name in enumerate(all_names):
            counts = replies[i * per:(i + 1) * per]
            bad = [(k, c) for (_, k), c in zip(self.bucket_keys(name), counts, strict=False) if isinstance(c, Exception)]
            if bad:
                key = bad[0][0]
                msg = f"{key!r} is a {self._type_of(key)}, not a list"
                if name in named:
                    raise DataError(f"queue {name!r}: {msg}")
                self.warnings.append(f"skipped queue {name!r}: {msg}")
                continue
            priorities = {str(b): int(c) for (b, _), c in zip(self.bucket_keys(name), counts, strict=False)}
            total = sum(priorities.values())
            out.append(QueueInfo(name=name, messages=total, priorities=priorities,
                                 exists=total > 0 or name in found, paused=name in paused))
        return out

    # -- pause records (celerytool pause / resume) ----------------------------------------
    @property
    def pause_key(self) -> str:
        return self.prefix + PAUSE_RECORDS

    def pause_records(self, queues: Iterable[str] | None = None) -> dict[str, PauseRecord]:
        with self.read_errors():
            reply = self.reader.pipeline([("HGETALL", self.pause_key)])[0]
        records = self._pause_records(reply, strict=True)
        return records if queues is None else {q: records[q] for q in queues if q in records}

    def _pause_records(self, reply: Any, strict: bool = False) -> dict[str, PauseRecord]:
        if isinstance(reply, Exception):
            if "NOPERM" in str(reply):  # a user without HGETALL: the listing stands without it
                if strict:
                    raise DataError(f"cannot read the pause records {self.pause_key!r}: {reply}")
                self.warnings.append(f"paused queues unknown: {reply}")
                return {}
            msg = f"{self.pause_key!r} is a {self._type_of(self.pause_key)}, not a hash: not celerytool's pause records"
            if strict:
                raise DataError(msg)
            self.warnings.append(f"paused queues unknown: {msg}")
            return {}
        pairs = list(reply or [])
        return {text(k): PauseRecord.from_text(text(k), v) for k, v in zip(pairs[::2], pairs[1::2], strict=True)}

    def save_pause_record(self, queue: str, record: PauseRecord | None) -> None:
        with self.errors():  # a key of another type: WRONGTYPE, one line, exit 1
            if record is None:
                self.client.hdel(self.pause_key, queue)
            else:
                self.client.hset(self.pause_key, queue, record.to_text())
        self.confirm_writes()

    def _type_of(self, key: str) -> str:
        with self.read_errors():
            return text(self.reader.execute("TYPE", key))

    def lengths(self, queue: str) -> list[tuple[int, str, int]]:
        """(bucket, key, LLEN) for each priority list; DataError on a non-list key."""
        keys = self.bucket_keys(queue)

        def llens() -> list[int | Exception]:
            pipe = self.client.pipeline(transaction=False)
            for _, key in keys:
                pipe.llen(key)
            return pipe.execute(raise_on_error=False)

        replies = self.read(llens)
        out = []
        for (bucket, key), n in zip(keys, replies, strict=False):
            if isinstance(n, Exception):
                raise DataError(f"{key!r} is a {self._type_of(key)}, not a list: not a Celery queue")
            out.append((bucket, key, int(n)))
        return out

    def check_destination(self, queue: str) -> None:
        self.lengths(queue)  # DataError when a key of the queue is not a list

    def require_queue(self, queue: str, lengths: list[tuple[int, str, int]]) -> None:
        """NotFound when the queue has neither messages nor a binding."""
        if any(n for _, _, n in lengths):
            return
        if any(b.queue == queue for b in self.bindings()):
            return
        raise NotFound(f"no queue named {queue!r} on {self.url.redacted()} "
                       "(no list and no binding; `celerytool queues` lists the known ones)")

    # -- peek -------------------------------------------------------------------------
    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]:
        """Messages in the order a worker would receive them; read-only.

        Each priority list is read from its right end (the next message)
        in chunks with LRANGE, so the cost follows ``limit``, not the depth.
        The queue is checked before this returns, so a missing queue or a
        wrong key type fails before any output is written.
        """
        lengths = self.lengths(queue)
        self.require_queue(queue, lengths)
        return self._peek_lists(queue, lengths, limit)

    def _peek_lists(self, queue: str, lengths: list[tuple[int, str, int]],
                    limit: int | None) -> Iterator[Message]:
        from celerytool.codecs.message import decode_envelope  # not needed by other commands

        limits = self.options.limits
        position = 0
        for bucket, key, length in lengths:
            for raw in self.iter_list(key, length, None if limit is None else limit - position):
                yield decode_envelope(raw, queue=queue, position=position, priority=bucket, limits=limits)
                position += 1
            if limit is not None and position >= limit:
                return

    def census(self, queue: str, by: str, selection: Selection, tick: Tick | None = None) -> Census:
        """``summary``: counts per value of ``by``, read with LRANGE, header-only where it can."""
        from celerytool.brokers.census import census_of_envelopes

        selection.require_no_age("queued Redis messages")
        lengths = self.lengths(queue)
        self.require_queue(queue, lengths)
        chunks = ((bucket, chunk) for bucket, key, n in lengths for chunk in self.iter_chunks(key, n))
        return census_of_envelopes(chunks, queue, by, selection, self.options.limits, tick)

    def iter_chunks(self, key: str, length: int) -> Iterator[list[bytes]]:
        """``iter_list`` in its chunks (next message first in each), one read ahead.

        The next LRANGE is sent before the current chunk is handed out, so
        Redis builds it while the caller works on this one.
        """
        ranges = [(-(off + min(PEEK_CHUNK, length - off)), -(off + 1)) for off in range(0, length, PEEK_CHUNK)]
        if not ranges:
            return
        pool = self.client.connection_pool
        with self.errors():
            conn = pool.get_connection()
        pending = False
        try:
            with self.errors():
                conn.send_command("LRANGE", key, *ranges[0])
                pending = True
            for i in range(len(ranges)):
                with self.errors():
                    chunk = conn.read_response()
                    pending = False
                    if chunk and i + 1 < len(ranges):
                        conn.send_command("LRANGE", key, *ranges[i + 1])
                        pending = True
                if not chunk:
                    return
                chunk.reverse()
                yield chunk
        finally:
            if pending:  # an unread reply: this connection cannot be reused
                conn.disconnect()
            pool.release(conn)

    def iter_list(self, key: str, length: int, limit: int | None) -> Iterator[bytes]:
        """Raw items of one list from the right end (next first), chunked."""
        want = length if limit is None else min(length, limit)
        offset = 0
        while offset < want:
            n = min(PEEK_CHUNK, want - offset)
            start, end = -(offset + n), -(offset + 1)

            def lrange(start: int = start, end: int = end) -> list[bytes | str]:
                return self.client.lrange(key, start, end)

            # bytes: the client decodes no replies (redis-py types them ``bytes | str``)
            chunk = cast("list[bytes]", self.read(lrange))
            if not chunk:
                return
            chunk.reverse()
            yield from chunk
            offset += len(chunk)
