"""Read Celery's Redis result backend: task and group metas, wait on their channels, scan.

Keys (wire-format section 4): ``celery-task-meta-<id>`` and
``celery-taskset-meta-<id>`` strings holding the meta encoded with the
result serializer, optionally compressed by celery 5.7
(``\\x00celery-compressed\\x00<mime>\\x00<data>``).  Every write is also
PUBLISHed on a channel named like the key, which ``wait`` subscribes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import Any, cast

from celerytool.backends.decode import result_from_meta
from celerytool.backends.query import READY_STATES, ResultQuery, newest_matching, with_group_status
from celerytool.backends.redis_changes import RedisResultChanges
from celerytool.clients.redispy import glob_escape
from celerytool.clients.resp import RespClient, resp_errors
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.model import TaskResult
from celerytool.urls import BrokerURL

TASK_PREFIX = "celery-task-meta-"
GROUP_PREFIX = "celery-taskset-meta-"
SCAN_CHUNK = 500
WALK_COUNT = 5000  # keys per round trip of walk (SCAN COUNT, MGET)


def backend_keyprefix(prefix: str) -> str:
    """Celery's ``result_backend_transport_options['global_keyprefix']`` rule."""
    if prefix and prefix[-1] not in ":_-.":
        return prefix + "_"
    return prefix


class RedisResultBackend(RedisResultChanges):
    """Celery's Redis result backend: read (here) and changed (``forget`` / ``expire``, the
    mixin in redis_changes.py)."""

    kind = "redis"
    task_prefix = TASK_PREFIX
    group_prefix = GROUP_PREFIX

    def __init__(self, url: BrokerURL, *, keyprefix: str = "", limits: Limits = DEFAULT_LIMITS,
                 connect_timeout: float = 5.0) -> None:
        self.url = url
        self.prefix = backend_keyprefix(keyprefix)
        self.limits = limits
        self.connect_timeout = connect_timeout

    @cached_property
    def client(self) -> RespClient:
        return RespClient(self.url, connect_timeout=self.connect_timeout)

    def errors(self) -> AbstractContextManager[None]:
        return resp_errors(self.url, "Redis result backend")

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
        self.close_writer()

    def task_key(self, task_id: str) -> str:
        return f"{self.prefix}{TASK_PREFIX}{task_id}"

    def group_key(self, group_id: str) -> str:
        return f"{self.prefix}{GROUP_PREFIX}{group_id}"

    # -- reading ------------------------------------------------------------------------
    def get_many(self, ids: list[str]) -> list[TaskResult]:
        """One result per id: the task meta, else the group meta, else PENDING."""
        if not ids:
            return []
        with self.errors():
            commands = []
            for task_id in ids:
                commands.append(("GET", self.task_key(task_id)))
                commands.append(("GET", self.group_key(task_id)))
            replies = self.client.pipeline(commands)
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        out = []
        for i, task_id in enumerate(ids):
            task_raw, group_raw = replies[2 * i], replies[2 * i + 1]
            if task_raw is not None:
                out.append(result_from_meta(task_id, task_raw, self.limits))
            elif group_raw is not None:
                out.append(result_from_meta(task_id, group_raw, self.limits, group=True))
            else:
                out.append(TaskResult(id=task_id, status="PENDING"))
        return [with_group_status(r, self.get_many) if r.group else r for r in out]

    def get(self, task_id: str) -> TaskResult:
        return self.get_many([task_id])[0]

    # -- waiting ------------------------------------------------------------------------
    def wait(self, ids: list[str], timeout: float | None,
             on_change: Callable[[TaskResult], None] | None = None) -> tuple[list[TaskResult], bool]:
        """Follow ``ids`` until all are ready or ``timeout`` passes: (results, timed_out).

        Subscribes to every id's channel first and reads the keys after, so no
        state change can slip between the read and the subscription.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        channels = {self.task_key(i): i for i in ids}
        with self.errors():
            # a connection of its own: a subscribed connection takes no other commands
            pubsub = RespClient(self.url, connect_timeout=self.connect_timeout)
            try:
                pubsub.subscribe(*channels)
                current = {r.id: r for r in self.get_many(ids)}
                for r in current.values():
                    if on_change is not None:
                        on_change(r)
                while not all(r.status in READY_STATES for r in current.values()):
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return [current[i] for i in ids], True
                    message = pubsub.get_message(min(left, 1.0) if left is not None else 1.0)
                    if message is None:  # quiet for a second: read again (groups, missed writes)
                        pending = [i for i, r in current.items() if r.status not in READY_STATES]
                        changed = self.get_many(pending)
                    else:
                        task_id = channels.get(message[0].decode("utf-8", "replace"))
                        if task_id is None:
                            continue
                        changed = [result_from_meta(task_id, message[1], self.limits)]
                    for r in changed:
                        if r.status != current[r.id].status or r.meta != current[r.id].meta:
                            current[r.id] = r
                            if on_change is not None:
                                on_change(r)
            finally:
                pubsub.close()
        return [current[i] for i in ids], False

    # -- scanning -----------------------------------------------------------------------
    def select(self, query: ResultQuery) -> list[TaskResult]:
        """``results``: every key is read (SCAN), only the newest ``limit`` matches are kept."""
        return newest_matching(self.scan(), query)

    def stream(self, query: ResultQuery) -> Iterator[TaskResult]:
        """Every result ``query`` matches, in SCAN order, none kept (``failures``, ``retry``).

        With states named, a stored value that does not contain one of their
        names is skipped without decoding (every serializer stores the state as
        plain text; compressed values are decoded as usual).
        """
        needles = tuple(s.encode() for s in sorted(query.statuses))
        one = len(needles) == 1
        head = len(self.prefix + TASK_PREFIX)
        pattern = glob_escape(self.prefix + TASK_PREFIX) + "*"
        for keys, values in self.walk(pattern):
            for key, raw in zip(keys, values or (), strict=True):
                if raw is None:  # expired between SCAN and MGET
                    continue
                if needles and raw[:1] != b"\x00" and (needles[0] not in raw if one else
                                                        not any(n in raw for n in needles)):
                    continue  # not one of the wanted states (compressed values start with \x00)
                r = result_from_meta(key[head:].decode("utf-8", "replace"), raw, self.limits)
                if query.matches(r):
                    yield r

    def walk(self, pattern: str, *, values: bool = True, keep: Callable[[list[bytes]], list[bytes]] | None = None,
             count: int = WALK_COUNT) -> Iterator[tuple[list[bytes], list[Any] | None]]:
        """Keys matching ``pattern`` in batches (SCAN, never KEYS), with their values (MGET).

        redis-py (its C parser, hiredis) reads the batches, and each batch's
        MGET goes out with the next SCAN: one round trip per batch.  ``keep``
        narrows each batch of keys before their values are read.
        """
        from celerytool.clients.redispy import connect, redis_errors

        with redis_errors(self.url, "Redis result backend"):
            client = connect(self.url, connect_timeout=self.connect_timeout)
            try:
                cursor, first = client.scan(0, match=pattern, count=count)
                found = cast("list[bytes]", first)  # no decode_responses: redis-py's "bytes | str" is bytes
                keys = keep(found) if keep else found
                while keys or cursor:
                    pipe = client.pipeline(transaction=False)
                    if keys and values:
                        pipe.mget(keys)
                    if cursor:
                        pipe.scan(cursor, match=pattern, count=count)
                    replies = pipe.execute() if len(pipe) else []
                    if keys:
                        yield keys, (replies.pop(0) if values else None)
                    if not cursor:
                        return
                    cursor, found = replies[0]
                    keys = keep(found) if keep else found
            finally:
                client.close()

    def scan(self) -> Iterator[TaskResult]:
        """Every stored task result, in SCAN order (never KEYS), fetched in chunks."""
        pattern = glob_escape(self.prefix + TASK_PREFIX) + "*"
        head = len(self.prefix + TASK_PREFIX)
        with self.errors():
            keys: list[bytes] = []
            for key in self.client.scan_iter(match=pattern, count=1000):
                keys.append(key)
                if len(keys) >= SCAN_CHUNK:
                    yield from self._fetch(keys, head)
                    keys = []
            if keys:
                yield from self._fetch(keys, head)

    def _fetch(self, keys: Iterable[bytes], head: int) -> Iterator[TaskResult]:
        keys = list(keys)
        values = self.client.execute("MGET", *keys)
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired between SCAN and MGET
                continue
            task_id = key.decode("utf-8", "replace")[head:]
            yield result_from_meta(task_id, raw, self.limits)
