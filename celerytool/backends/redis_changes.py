"""``forget`` and ``expire``: delete stored results, or give them a TTL, selected by id / state /
task / age.

The writing half of ``RedisResultBackend`` (``redis.py`` mixes it in; databases:
``sql_changes.py``).  Redis walks ``celery-task-meta-*`` (and the group
metas when no state or task is asked for) with SCAN, reads each batch with
one MGET, decides in Python, and deletes each batch with one UNLINK (or
sets TTLs with one script).  A meta is decided from its JSON text without
building a TaskResult; anything else (pickle, msgpack, compressed) takes the
general decoder.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from celerytool.backends.criteria import Criteria, Progress, ResultOp
from celerytool.codecs.limits import Limits
from celerytool.errors import UsageError
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from redis import Redis

SCAN_COUNT = 5000  # keys per round trip (SCAN COUNT, MGET, UNLINK)
_STATUS = re.compile(rb'^\{"status": "([A-Z_]+)"')

EXPIRE_LUA = """
local ms, only = tonumber(ARGV[1]), ARGV[2] == '1'
local n = 0
for _, k in ipairs(KEYS) do
  local ttl = redis.call('PTTL', k)
  if ttl ~= -2 and (not only or ttl == -1) then
    redis.call('PEXPIRE', k, ms)
    n = n + 1
  end
end
return n
"""


class RedisResultChanges:
    """``forget`` and ``expire`` for ``RedisResultBackend`` (its url, prefix, limits, keys and
    ``walk``); writes go through redis-py (``writer``), reads through the backend's walk."""

    url: BrokerURL
    prefix: str
    limits: Limits
    connect_timeout: float
    task_prefix: str  # Celery's key names, from redis.py
    group_prefix: str

    if TYPE_CHECKING:  # RedisResultBackend's own (redis.py)
        def task_key(self, task_id: str) -> str: ...

        def group_key(self, group_id: str) -> str: ...

        def walk(self, pattern: str, *, values: bool = True,
                 keep: Callable[[list[bytes]], list[bytes]] | None = None,
                 count: int = ...) -> Iterator[tuple[list[bytes], list[Any] | None]]: ...

    @cached_property
    def writer(self) -> Redis:
        """redis-py (with hiredis when installed): MGET of a thousand values parses in C."""
        from celerytool.clients.redispy import connect

        return connect(self.url, connect_timeout=self.connect_timeout)

    def write_errors(self) -> AbstractContextManager[None]:
        from celerytool.clients.redispy import redis_errors

        return redis_errors(self.url, "Redis result backend")

    def close_writer(self) -> None:
        if "writer" in self.__dict__:
            self.writer.close()

    # -- selection ----------------------------------------------------------------------
    def _batches(self, criteria: Criteria) -> Iterator[tuple[list[bytes], list[Any] | None]]:
        """Candidate keys in batches, with their values when the criteria need them.

        A SCAN walk sends each batch's MGET together with the next SCAN: one
        round trip per batch.  Given ids: their task and group keys.
        """
        from celerytool.clients.redispy import glob_escape

        client, need = self.writer, criteria.needs_value
        if criteria.ids:
            keys = [k.encode() for i in criteria.ids for k in (self.task_key(i), self.group_key(i))]
            for start in range(0, len(keys), SCAN_COUNT):
                batch = keys[start:start + SCAN_COUNT]
                values = client.mget(batch)
                if need:
                    yield batch, values
                else:
                    yield [k for k, v in zip(batch, values, strict=True) if v is not None], None
            return
        groups = not (criteria.statuses or criteria.tasks)
        # one pass for both: celery-task-meta-* and celery-taskset-meta-*
        pattern = glob_escape(self.prefix) + ("celery-task*-meta-*" if groups else glob_escape(self.task_prefix) + "*")
        group_head = (self.prefix + self.group_prefix).encode()

        def metas(keys: list[bytes]) -> list[bytes]:
            if groups:  # not the chord counters (<gid>.j, .t, ...)
                return [k for k in keys if not (k.startswith(group_head) and k[-2:-1] == b".")]
            return keys

        yield from self.walk(pattern, values=need, keep=metas, count=SCAN_COUNT)

    def _select(self, keys: list[bytes], values: list[Any], criteria: Criteria, result: ResultOp,
                now: float) -> list[bytes]:
        out = []
        decide = self._decide
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired or deleted since the SCAN
                continue
            result.examined += 1
            decided = decide(raw, criteria, now)
            if decided is None:
                result.undecodable += 1
            elif decided:
                out.append(key)
        return out

    def _decide(self, raw: bytes, criteria: Criteria, now: float) -> bool | None:
        m = _STATUS.match(raw)
        if m is not None and criteria.statuses and m.group(1).decode() not in criteria.statuses:
            return False  # the common rejection, without parsing anything
        meta: Any = None
        if m is not None or raw[:1] == b"{":
            try:
                meta = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # UnicodeDecodeError included; nested too deep
                meta = None
        if not isinstance(meta, dict):
            from celerytool.backends.decode import decode_value

            try:
                meta = decode_value(raw, self.limits)
            except Exception:
                return None
            if not isinstance(meta, dict):
                return None
        date = meta.get("date_done")
        return criteria.matches(meta.get("status"), meta.get("name"),
                                date if isinstance(date, str) else None, now)

    def _walk(self, criteria: Criteria, control: Progress, result: ResultOp,
              act: Callable[[list[bytes]], None]) -> ResultOp:
        now = time.time()
        with self.write_errors():
            for keys, values in self._batches(criteria):
                if control.stop():
                    result.interrupted = True
                    break
                if values is not None:
                    chosen = self._select(keys, values, criteria, result, now)
                else:
                    chosen = keys
                    result.examined += len(keys)
                result.matched += len(chosen)
                if chosen:
                    act(chosen)
                control.tick(len(keys))
        return result

    # -- the two operations -------------------------------------------------------------
    def forget(self, criteria: Criteria, control: Progress) -> ResultOp:
        result = ResultOp("forget", dry_run=control.dry_run)

        def act(keys: list[bytes]) -> None:
            if not control.dry_run:
                result.done += int(self.writer.unlink(*keys))

        return self._walk(criteria, control, result, act)

    def expire(self, criteria: Criteria, ttl: float, *, only_without_ttl: bool,
               control: Progress) -> ResultOp:
        if ttl <= 0:
            raise UsageError("--ttl must be positive")
        result = ResultOp("expire", dry_run=control.dry_run,
                          extra={"ttl": ttl, "only_without_ttl": only_without_ttl})
        client = self.writer
        ms = int(ttl * 1000)

        def act(keys: list[bytes]) -> None:
            if control.dry_run:
                if only_without_ttl:
                    pipe = client.pipeline(transaction=False)
                    for k in keys:
                        pipe.pttl(k)
                    ttls = pipe.execute()
                    result.extra["would_set"] = result.extra.get("would_set", 0) + sum(1 for t in ttls if t == -1)
                return
            result.done += int(client.eval(EXPIRE_LUA, len(keys), *keys, ms, "1" if only_without_ttl else "0"))

        return self._walk(criteria, control, result, act)
