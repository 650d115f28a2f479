"""``doctor``: one SCAN pass over a Celery Redis database, a census per key class, and findings.

Each SCAN batch goes to the server in one Lua call that returns, per key,
its type, its PTTL, for lists their idle time and memory, and for result
keys the ``date_done`` of the stored meta, as one text: the per-key work
stays in C on both sides.  For other keys ``MEMORY USAGE`` is asked for the
first ``sample`` keys of each class (SCAN order is hash order, so that is a
fair sample); a class with more keys gets an estimate (mean x count), and
says so.  Nothing is kept per key except the
TTLs (8 bytes each) and the few lists that need a second look.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from celerytool.brokers.redis.routing import BINDING_PERMANENT_PREFIX, BINDING_PREFIX
from celerytool.housekeeping.keys import CLASSES, RESULT_CLASSES, KeyLayout

if TYPE_CHECKING:
    from redis import Redis

    from celerytool.brokers.redis.broker import RedisBroker
    from celerytool.clients.resp import RespClient

SCAN_COUNT = 1000
SAMPLE = 1000
DEFAULT_IDLE = 60.0  # seconds a reply list must be untouched to count as abandoned
DEFAULT_VISIBILITY = 3600.0  # kombu's visibility_timeout

INSPECT = """
local r = tonumber(ARGV[1])
local out = {}
local n = 0
for i, k in ipairs(KEYS) do
  if i <= r then
    local v = redis.pcall('GET', k)
    local d = ''
    if type(v) == 'string' then
      local p = string.find(v, '"date_done": "', 1, true)
      if p then d = string.sub(v, p + 14, p + 49) end
    end
    out[n + 1] = redis.call('PTTL', k)
    out[n + 2] = d
    n = n + 2
  else
    local t = redis.call('TYPE', k)['ok']
    local idle, mem = -1, -1
    if t == 'list' then
      local got = redis.pcall('OBJECT', 'IDLETIME', k)
      if type(got) == 'number' then idle = got end
      mem = redis.call('MEMORY', 'USAGE', k) or -1
    end
    out[n + 1] = t
    out[n + 2] = redis.call('PTTL', k)
    out[n + 3] = idle
    out[n + 4] = mem
    n = n + 4
  end
end
return out
"""


@dataclass
class ClassStats:
    name: str
    count: int = 0
    ttl_none: int = 0
    ttls: array = field(default_factory=lambda: array("q"))
    memory_sampled: int = 0  # keys measured with MEMORY USAGE
    memory_measured: int = 0  # their bytes
    oldest_date_done: str | None = None

    def add(self, ttl: int) -> None:
        """One more key of this class, with its PTTL (negative: none)."""
        self.count += 1
        if ttl < 0:
            self.ttl_none += 1
        else:
            self.ttls.append(ttl)

    def to_json(self) -> dict[str, Any]:
        ttls = sorted(self.ttls)
        exact = self.memory_sampled >= self.count
        memory = self.memory_measured if exact or not self.memory_sampled else \
            round(self.memory_measured / self.memory_sampled * self.count)
        out: dict[str, Any] = {
            "class": self.name, "what": CLASSES[self.name], "count": self.count,
            "memory": memory, "memory_estimated": not exact,
            "memory_sample": self.memory_sampled,
            "ttl_none": self.ttl_none,
            "ttl_min": _secs(ttls[0]) if ttls else None,
            "ttl_median": _secs(ttls[len(ttls) // 2]) if ttls else None,
            "ttl_max": _secs(ttls[-1]) if ttls else None,
        }
        if self.name in RESULT_CLASSES:
            out["oldest_date_done"] = self.oldest_date_done
        return out


def _secs(ms: int) -> float:
    return round(ms / 1000, 3)


@dataclass
class Finding:
    name: str
    count: int
    message: str
    fix: str
    memory: int | None = None
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"finding": self.name, "count": self.count, "memory": self.memory,
                "message": self.message, "fix": self.fix, "examples": self.examples}


@dataclass
class Report:
    database: str
    keys: int
    seconds: float
    sample: int
    classes: list[ClassStats]
    findings: list[Finding]

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "keys": self.keys, "seconds": round(self.seconds, 3),
                "memory_sample_size": self.sample,
                "classes": [c.to_json() for c in self.classes if c.count],
                "findings": [f.to_json() for f in self.findings]}


def layout_of(broker: RedisBroker, result_prefix: str = "") -> KeyLayout:
    from celerytool.backends.redis import backend_keyprefix

    return KeyLayout(prefix=broker.prefix.encode(), result_prefix=backend_keyprefix(result_prefix).encode(),
                     sep=broker.sep.encode("latin-1"), steps=tuple(broker.steps))


class Doctor:
    """Scan a database and report; ``broker`` is a RedisBroker (reader, prefix, sep, steps)."""

    def __init__(self, broker: RedisBroker, *, result_prefix: str = "", sample: int = SAMPLE,
                 idle: float = DEFAULT_IDLE, visibility_timeout: float = DEFAULT_VISIBILITY,
                 tick: Callable[[int], None] | None = None,
                 silent: Callable[[], list[str]] | None = None) -> None:
        self.b = broker
        self.silent = silent  # workers bound to the control exchange that answer no ping
        self.layout = layout_of(broker, result_prefix)
        self.sample = sample
        self.idle = idle
        self.visibility_timeout = visibility_timeout
        self.tick = tick or (lambda n: None)
        self.stats = {name: ClassStats(name) for name in CLASSES}
        self.lists: dict[bytes, list[tuple[bytes, int, int]]] = {}  # queue -> [(key, ttl, memory)]
        # abandoned reply lists: how many, their bytes, the first few (a leak can be 100,000s)
        self.abandoned = [0, 0]
        self.abandoned_examples: list[bytes] = []
        self.mutex_ttl: int | None = None
        self.binding_keys: list[bytes] = []
        self.notes: list[str] = []  # how the pass was made, when not the usual way (stderr)
        self.scripts = True  # the ACL lets us run scripts (not a +@read user)

    # -- the pass -----------------------------------------------------------------------
    def scan(self) -> Report:
        client = self.b.client  # redis-py: hiredis parses the script's replies in C
        started = time.monotonic()
        total = 0
        with self.b.errors():
            sha = self._script(client)
            # bytes: the client decodes no replies (redis-py types them ``bytes | str``)
            cursor, keys = cast("tuple[int, list[bytes]]", client.scan(0, count=SCAN_COUNT))
            while keys or cursor:
                # this batch's script and the next SCAN: one round trip
                named = [self.layout.by_name(k) in RESULT_CLASSES for k in keys]
                results = [k for k, r in zip(keys, named, strict=True) if r]
                others = [k for k, r in zip(keys, named, strict=True) if not r] if results else keys
                pipe = client.pipeline(transaction=False)
                if keys and sha:
                    pipe.evalsha(sha, len(keys), *results, *others, len(results))
                if cursor:
                    pipe.scan(cursor, count=SCAN_COUNT)
                replies = pipe.execute()
                if keys:
                    reply = replies[0] if sha else self._inspect_plain(client, results, others)
                    self._batch(client, results, others, reply)
                    total += len(keys)
                    self.tick(len(keys))
                if not cursor:
                    break
                cursor, keys = replies[-1]
            self._decide_lists(client)
        with self.b.read_errors():
            findings = self._findings(self.b.reader)
        classes = [self.stats[name] for name in CLASSES]
        return Report(self.b.url.redacted(), total, time.monotonic() - started, self.sample, classes, findings)

    def _script(self, client: Redis) -> str | None:
        """The INSPECT script's sha, or None when the ACL refuses scripts (a ``+@read`` user):
        then the same facts are read with plain read commands (``_inspect_plain``)."""
        import redis.exceptions as rex

        try:
            return str(client.script_load(INSPECT))
        except rex.NoPermissionError:
            self.scripts = False
            self.notes.append("the ACL refuses scripts (SCRIPT LOAD): read with plain commands, "
                              "more round trips; result dates from the last 1 KB of each value")
            return None

    def _inspect_plain(self, client: Redis, results: list[bytes], others: list[bytes]) -> list[Any]:
        """INSPECT's reply, from ``+@read`` commands only (PTTL, GETRANGE, TYPE, OBJECT
        IDLETIME, MEMORY USAGE).  A result's ``date_done`` is looked for in its last kilobyte
        (where Celery's JSON writes it), not in the whole value."""
        pipe = client.pipeline(transaction=False)
        for key in results:
            pipe.pttl(key)
            pipe.getrange(key, -1024, -1)
        for key in others:
            pipe.type(key)
            pipe.pttl(key)
        first = pipe.execute(raise_on_error=False)
        out: list[Any] = []
        lists: list[bytes] = []
        for n in range(len(results)):
            ttl, tail = first[2 * n], first[2 * n + 1]
            date = b""
            if isinstance(tail, bytes) and (at := tail.find(b'"date_done": "')) >= 0:
                date = tail[at + 14:at + 50]
            out += [ttl if isinstance(ttl, int) else -2, date]
        base = 2 * len(results)
        for n, key in enumerate(others):
            type_, ttl = first[base + 2 * n], first[base + 2 * n + 1]
            type_ = type_ if isinstance(type_, bytes) else str(type_).encode()
            out += [type_, ttl if isinstance(ttl, int) else -2, -1, -1]
            if type_ == b"list":
                lists.append(key)
        if lists:
            pipe = client.pipeline(transaction=False)
            for key in lists:
                pipe.object("idletime", key)
                pipe.memory_usage(key)
            got = iter(pipe.execute(raise_on_error=False))
            where = {key: base + 4 * n for n, key in enumerate(others)}  # its 4 slots in ``out``
            for key in lists:
                idle, memory = next(got), next(got)
                at = where[key]
                out[at + 2] = idle if isinstance(idle, int) else -1
                out[at + 3] = memory if isinstance(memory, int) else -1
        return out

    def _batch(self, client: Redis, results: list[bytes], others: list[bytes], reply: list[Any]) -> None:
        layout, stats = self.layout, self.stats
        measure: list[tuple[bytes, ClassStats]] = []
        i = 0
        for key in results:
            ttl, date_done = reply[i], reply[i + 1]
            i += 2
            if ttl == -2:  # gone between SCAN and the script
                continue
            s = stats[layout.by_name(key) or "other"]
            s.add(ttl)
            if date_done:
                text = date_done.split(b'"', 1)[0].decode("utf-8", "replace")
                if s.oldest_date_done is None or text < s.oldest_date_done:
                    s.oldest_date_done = text
            if s.memory_sampled + len(measure) < self.sample:
                measure.append((key, s))
        for key in others:
            type_, ttl, idle, memory = reply[i:i + 4]
            i += 4
            if ttl == -2:
                continue
            cls = layout.by_name(key)
            if cls is None:
                cls, queue = layout.by_type(key, type_.decode())
                if cls in ("queue", "queue_priority"):  # Celery's or not: decided at the end
                    self.lists.setdefault(queue or key, []).append((key, ttl, memory))
                    continue
                if cls == "reply_list":
                    if idle >= self.idle:
                        self.abandoned[0] += 1
                        self.abandoned[1] += max(0, memory)
                        if len(self.abandoned_examples) < 5:
                            self.abandoned_examples.append(key)
            elif cls == "unacked_mutex":
                self.mutex_ttl = ttl
            elif cls == "binding":
                self.binding_keys.append(key)
            s = stats[cls]
            s.add(ttl)
            if type_ == b"list":
                s.memory_sampled += 1
                s.memory_measured += max(0, memory)
            elif s.memory_sampled + len(measure) < self.sample:
                measure.append((key, s))
        self._measure(client, measure)

    def _measure(self, client: Redis, measure: list[tuple[bytes, ClassStats]]) -> None:
        if not measure:
            return
        pipe = client.pipeline(transaction=False)
        for key, _ in measure:
            pipe.memory_usage(key)
        for (_, s), n in zip(measure, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(n, int):
                s.memory_sampled += 1
                s.memory_measured += n

    def _decide_lists(self, client: Redis) -> None:
        """A list is a Celery queue when bound, or when its next item is a kombu envelope."""
        tables = [k for k in self.binding_keys if k.startswith(self.layout.prefix + BINDING_PREFIX.encode())
                  or k.startswith(self.layout.prefix + BINDING_PERMANENT_PREFIX.encode())]
        pipe = client.pipeline(transaction=False)
        for key in tables:
            pipe.smembers(key)
        bound: set[bytes] = set()
        sep = self.layout.sep
        for members in pipe.execute(raise_on_error=False) if tables else []:
            if isinstance(members, set):
                bound |= {sep.join(m.split(sep)[2:]) for m in members if m.count(sep) >= 2}
        unknown = [name for name in self.lists if name not in bound]
        pipe = client.pipeline(transaction=False)
        for name in unknown:
            pipe.lindex(self.lists[name][0][0], -1)
        heads = pipe.execute(raise_on_error=False) if unknown else []
        foreign = {n for n, first in zip(unknown, heads, strict=True)
                   if not (isinstance(first, bytes) and first.startswith(b"{") and b'"properties"' in first)}
        for name, entries in self.lists.items():
            for key, ttl, memory in entries:
                cls = "other" if name in foreign else \
                    ("queue" if self.layout.split_priority(key[len(self.layout.prefix):])[1] == 0
                     else "queue_priority")
                s = self.stats[cls]
                s.add(ttl)
                s.memory_sampled += 1
                s.memory_measured += max(0, memory)

    # -- findings -----------------------------------------------------------------------
    def _findings(self, client: RespClient) -> list[Finding]:
        from celerytool.housekeeping import fixes

        out: list[Finding] = []
        no_ttl = sum(self.stats[c].ttl_none for c in RESULT_CLASSES)
        if no_ttl:
            out.append(Finding(
                "results-without-ttl", no_ttl,
                f"{no_ttl} stored result(s) have no TTL and stay until deleted "
                "(result_expires=None or 0, or written by an old Celery)",
                "celerytool doctor --fix results-without-ttl --ttl 1d   "
                "(or: celerytool expire --ttl 1d --only-without-ttl --all)"))
        count, memory = self.abandoned
        if count:
            out.append(Finding(
                "reply-lists", count,
                f"{count} remote-control reply list(s) untouched for {self.idle:g}s or more: "
                "replies to a client that is gone (celery#6089)",
                "celerytool doctor --fix reply-lists", memory=memory,
                examples=[k.decode("utf-8", "replace") for k in self.abandoned_examples]))
        orphans = fixes.orphan_bindings(self.b, client)
        if orphans:
            out.append(Finding(
                "orphan-bindings", len(orphans),
                f"{len(orphans)} binding row(s) route to reply queues that no longer exist",
                "celerytool doctor --fix orphan-bindings",
                examples=[f"{t} -> {q}" for t, _, q in orphans[:5]]))
        stuck = self.mutex_ttl is not None and self.mutex_ttl < 0
        if stuck:
            out.append(Finding(
                "stuck-mutex", 1,
                "unacked_mutex has no TTL: kombu's visibility sweep cannot take it, so stale "
                "unacked messages are never restored",
                "celerytool doctor --fix stuck-mutex"))
        silent: list[str] = []
        if self.silent is not None and self.scripts:
            silent = self.silent()
        elif self.silent is not None:  # a +@read user cannot publish a ping
            self.notes.append("silent workers not checked: pinging them needs write commands the ACL refuses")
        if silent:
            out.append(Finding(
                "silent-workers", len(silent),
                f"{len(silent)} worker(s) bound to the control exchange answer no ping (probably dead, "
                "e.g. killed with SIGKILL): every `workers` / `inspect` waits its whole timeout for them",
                "celerytool doctor --fix silent-workers", examples=silent[:5]))
        stale = fixes.stale_unacked(self.b, client, self.visibility_timeout)
        if stale:
            out.append(Finding(
                "stale-unacked", stale,
                f"{stale} unacked message(s) delivered more than {self.visibility_timeout:g}s ago "
                "(visibility_timeout): their worker is probably gone",
                ("celerytool doctor --fix stuck-mutex, then " if stuck else "")
                + "celerytool doctor --fix stale-unacked   "
                f"(or: celerytool requeue --older-than {self.visibility_timeout:g}s)"))
        return out
