"""What ``doctor`` checks beyond counting, and the fix for each finding.

Every fix looks again before it changes anything (the report may be old),
and changes only what it names: the abandoned reply lists and their binding
rows, the binding rows whose reply queue is gone, the stale unacked entries
(requeued like ``celerytool requeue``), a lock without TTL, or the TTL of
results that have none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celerytool.brokers.redis.routing import BINDING_PERMANENT_PREFIX, BINDING_PREFIX
from celerytool.brokers.redis.unacked import UNACKED_INDEX, UNACKED_MUTEX
from celerytool.clients.redispy import glob_escape
from celerytool.errors import UsageError
from celerytool.housekeeping.keys import REPLY_EXCHANGE, REPLY_SUFFIX
from celerytool.kombu_layout import PIDBOX_EXCHANGE, PIDBOX_SUFFIX

if TYPE_CHECKING:
    from celerytool.brokers.base import Control
    from celerytool.brokers.redis.broker import RedisBroker
    from celerytool.clients.resp import RespClient

FIXES = ("results-without-ttl", "reply-lists", "orphan-bindings", "silent-workers", "stale-unacked",
         "stuck-mutex")

DEL_IF_NO_TTL = """
if redis.call('PTTL', KEYS[1]) == -1 then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _k(b: RedisBroker, name: str) -> bytes:
    return (b.prefix + name).encode()


def _reply_tables(b: RedisBroker) -> list[bytes]:
    return [_k(b, BINDING_PREFIX + REPLY_EXCHANGE), _k(b, BINDING_PERMANENT_PREFIX + REPLY_EXCHANGE)]


def abandoned_replies(b: RedisBroker, client: RespClient, keys: list[bytes], idle: float) -> list[tuple[bytes, int]]:
    """(key, bytes) of the reply lists nobody has touched for ``idle`` seconds.

    A waiting client pops each reply as it lands, so a list that holds
    replies and has not been read or written for a while has no reader.
    """
    if not keys:
        return []
    replies = client.pipeline([c for k in keys for c in (("OBJECT", "IDLETIME", k), ("MEMORY", "USAGE", k))])
    out = []
    for i, key in enumerate(keys):
        idle_s, memory = replies[2 * i], replies[2 * i + 1]
        if isinstance(idle_s, int) and idle_s >= idle:
            out.append((key, memory if isinstance(memory, int) else 0))
    return out


def _queue_of(b: RedisBroker, member: bytes) -> str | None:
    parts = member.decode("utf-8", "replace").split(b.sep)
    return b.sep.join(parts[2:]) if len(parts) >= 3 else None


def orphan_bindings(b: RedisBroker, client: RespClient) -> list[tuple[str, bytes, str]]:
    """(table, row, queue) of reply-exchange rows whose queue has no list.

    A reply queue lives while its client waits (seconds); a row whose list
    is gone belongs to a client that exited without deleting its queue.
    """
    tables = _reply_tables(b)
    members = client.pipeline([("SMEMBERS", t) for t in tables])
    rows: list[tuple[str, bytes, str]] = []
    for table, found in zip(tables, members, strict=True):
        if not isinstance(found, list):
            continue
        for member in found:
            queue = _queue_of(b, member)
            if queue is not None and queue.endswith(REPLY_SUFFIX.decode()):
                rows.append((table.decode("utf-8", "replace"), member, queue))
    if not rows:
        return []
    exists = client.pipeline([("EXISTS", *[k.encode() if isinstance(k, str) else k
                                          for _, k in b.bucket_keys(q)]) for _, _, q in rows])
    return [row for row, n in zip(rows, exists, strict=True) if n == 0]


def stale_unacked(b: RedisBroker, client: RespClient, visibility_timeout: float) -> int:
    n = client.execute("ZCOUNT", _k(b, UNACKED_INDEX), "-inf", f"({time.time() - visibility_timeout}")
    return int(n or 0)


# -- applying a fix ---------------------------------------------------------------------------
def apply_fix(name: str, broker: RedisBroker, *, dry_run: bool, idle: float, visibility_timeout: float,
              ttl: float | None, result_prefix: str = "", control: Control | None = None,
              silent: Callable[[], list[str]] | None = None) -> dict[str, Any]:
    """Apply one fix; return what it did (or would do) as plain data."""
    if name not in FIXES:
        raise UsageError(f"no fix named {name!r} (fixes: {', '.join(FIXES)})")
    client = broker.reader
    if name == "silent-workers":
        return _fix_silent(broker, client, silent() if silent is not None else [], dry_run)
    with broker.read_errors():
        if name == "results-without-ttl":
            return _fix_ttl(broker, dry_run, ttl, result_prefix, control)
        if name == "reply-lists":
            return _fix_replies(broker, client, dry_run, idle)
        if name == "orphan-bindings":
            rows = orphan_bindings(broker, client)
            if rows and not dry_run:
                client.pipeline([("SREM", table, member) for table, member, _ in rows])
            return {"fix": name, "bindings_removed": len(rows),
                    "rows": [f"{t} -> {q}" for t, _, q in rows], "dry_run": dry_run}
        if name == "stuck-mutex":
            key = _k(broker, UNACKED_MUTEX)
            stuck = client.execute("PTTL", key) == -1
            removed = 0
            if stuck and not dry_run:
                removed = int(client.execute("EVAL", DEL_IF_NO_TTL, 1, key))
            return {"fix": name, "stuck": stuck, "removed": removed, "dry_run": dry_run}
    return _fix_unacked(broker, dry_run, visibility_timeout, control)


def _fix_silent(b: RedisBroker, client: RespClient, names: list[str], dry_run: bool) -> dict[str, Any]:
    """Remove the control-exchange binding rows of workers that answered no ping (asked again
    just now): a worker that comes back binds again when it restarts."""
    table = _k(b, BINDING_PREFIX + PIDBOX_EXCHANGE)
    wanted = {n + PIDBOX_SUFFIX for n in names}
    with b.read_errors():
        rows = [m for m in client.execute("SMEMBERS", table) if _queue_of(b, m) in wanted]
        if rows and not dry_run:
            client.execute("SREM", table, *rows)
    return {"fix": "silent-workers", "workers": names, "bindings_removed": len(rows), "dry_run": dry_run}


def _fix_replies(b: RedisBroker, client: RespClient, dry_run: bool, idle: float) -> dict[str, Any]:
    from celerytool.housekeeping.keys import KeyLayout

    layout = KeyLayout(prefix=b.prefix.encode(), sep=b.sep.encode("latin-1"), steps=tuple(b.steps))
    pattern = glob_escape(b.prefix) + "*" + REPLY_SUFFIX.decode() + "*"
    keys = [k for k in client.scan_iter(match=pattern, count=1000, type_="list")
            if layout.by_type(k, "list")[0] == "reply_list"]
    found = abandoned_replies(b, client, keys, idle)
    queues = {layout.by_type(k, "list")[1] for k, _ in found}
    rows = []
    if queues:
        tables = _reply_tables(b)
        for table, members in zip(tables, client.pipeline([("SMEMBERS", t) for t in tables]), strict=True):
            if isinstance(members, list):
                rows += [(table, m) for m in members if (_queue_of(b, m) or "").encode() in queues]
    if found and not dry_run:
        client.pipeline([("UNLINK", *[k for k, _ in found])] + [("SREM", t, m) for t, m in rows])
    return {"fix": "reply-lists", "lists_removed": len(found), "bytes": sum(n for _, n in found),
            "bindings_removed": len(rows), "lists": [k.decode("utf-8", "replace") for k, _ in found],
            "dry_run": dry_run}


def _fix_ttl(b: RedisBroker, dry_run: bool, ttl: float | None, result_prefix: str,
             control: Control | None) -> dict[str, Any]:
    from celerytool.backends.criteria import Criteria
    from celerytool.backends.redis import RedisResultBackend

    if ttl is None:
        raise UsageError("--fix results-without-ttl needs --ttl DURATION (Celery's default result_expires is 1d)")
    store = RedisResultBackend(b.url, keyprefix=result_prefix, connect_timeout=b.options.connect_timeout)
    try:
        result = store.expire(Criteria(), ttl, only_without_ttl=True, control=_control(control, dry_run))
    finally:
        store.close()
    return {"fix": "results-without-ttl", **result.to_json()}


def _fix_unacked(b: RedisBroker, dry_run: bool, visibility_timeout: float,
                 control: Control | None) -> dict[str, Any]:
    from celerytool.selection import Selection

    result = b.ops().requeue(None, Selection.build(older_than=visibility_timeout), _control(control, dry_run))
    return {"fix": "stale-unacked", **result.to_json()}


def _control(control: Control | None, dry_run: bool) -> Control:
    from celerytool.brokers.base import Control

    if control is None:
        return Control(dry_run=dry_run)
    control.dry_run = dry_run
    return control



Tick = Callable[[int], None]
