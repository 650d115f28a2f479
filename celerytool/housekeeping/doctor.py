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
from typing import Any

from celerytool.housekeeping.keys import CLASSES, RESULT_CLASSES, KeyLayout

SCAN_COUNT = 1000
SAMPLE = 1000
DEFAULT_IDLE = 60.0  # seconds a reply list must be untouched to count as abandoned
DEFAULT_VISIBILITY = 3600.0  # kombu's visibility_timeout

INSPECT = """
local out = {}
local rp = ARGV[1]
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  local d, idle, mem = '', -1, -1
  if t == 'string' and string.sub(k, 1, #rp) == rp then
    local v = redis.call('GET', k)
    if v then d = string.match(v, '"date_done": ?"([^"]*)"') or '' end
  elseif t == 'list' then
    local got = redis.pcall('OBJECT', 'IDLETIME', k)
    if type(got) == 'number' then idle = got end
    mem = redis.call('MEMORY', 'USAGE', k) or -1
  end
  out[i] = t .. ' ' .. redis.call('PTTL', k) .. ' ' .. idle .. ' ' .. mem .. ' ' .. d
end
return table.concat(out, '\\n')
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


def layout_of(broker: Any, result_prefix: str = "") -> KeyLayout:
    from celerytool.backends.redis import backend_keyprefix

    return KeyLayout(prefix=broker.prefix.encode(), result_prefix=backend_keyprefix(result_prefix).encode(),
                     sep=broker.sep.encode("latin-1"), steps=tuple(broker.steps))


class Doctor:
    """Scan a database and report; ``broker`` is a RedisBroker (reader, prefix, sep, steps)."""

    def __init__(self, broker: Any, *, result_prefix: str = "", sample: int = SAMPLE,
                 idle: float = DEFAULT_IDLE, visibility_timeout: float = DEFAULT_VISIBILITY,
                 tick: Callable[[int], None] | None = None) -> None:
        self.b = broker
        self.layout = layout_of(broker, result_prefix)
        self.sample = sample
        self.idle = idle
        self.visibility_timeout = visibility_timeout
        self.tick = tick or (lambda n: None)
        self.stats = {name: ClassStats(name) for name in CLASSES}
        self.lists: dict[bytes, list[tuple[bytes, int, int]]] = {}  # queue -> [(key, ttl, memory)]
        self.reply_keys: list[tuple[bytes, int, int]] = []  # (key, idle seconds, memory)
        self.mutex_ttl: int | None = None

    # -- the pass -----------------------------------------------------------------------
    def scan(self) -> Report:
        client = self.b.reader
        started = time.monotonic()
        total = 0
        with self.b.read_errors():
            sha = client.execute("SCRIPT", "LOAD", INSPECT)
            cursor: Any = b"0"
            while True:
                cursor, keys = client.execute("SCAN", cursor, "COUNT", SCAN_COUNT)
                if keys:
                    self._batch(client, sha, keys)
                    total += len(keys)
                    self.tick(len(keys))
                if cursor == b"0":
                    break
            self._decide_lists(client)
            findings = self._findings(client)
        classes = [self.stats[name] for name in CLASSES]
        return Report(self.b.url.redacted(), total, time.monotonic() - started, self.sample, classes, findings)

    def _batch(self, client: Any, sha: bytes, keys: list[bytes]) -> None:
        layout = self.layout
        reply = client.execute("EVALSHA", sha, len(keys), *keys, layout.result_prefix)
        stats = self.stats
        measure: list[tuple[bytes, ClassStats]] = []
        for key, line in zip(keys, reply.split(b"\n"), strict=True):
            type_, ttl_text, idle_text, mem_text, date_done = line.split(b" ", 4)
            ttl = int(ttl_text)
            if ttl == -2:  # gone between SCAN and the script
                continue
            cls = layout.by_name(key)
            if cls is None:
                cls, queue = layout.by_type(key, type_.decode())
                if cls in ("queue", "queue_priority"):  # Celery's or not: decided at the end
                    self.lists.setdefault(queue or key, []).append((key, ttl, int(mem_text)))
                    continue
                if cls == "reply_list":
                    self.reply_keys.append((key, int(idle_text), int(mem_text)))
            elif cls == "unacked_mutex":
                self.mutex_ttl = ttl
            s = stats[cls]
            s.count += 1
            if ttl < 0:
                s.ttl_none += 1
            else:
                s.ttls.append(ttl)
            if date_done:
                text = date_done.decode("utf-8", "replace")
                if s.oldest_date_done is None or text < s.oldest_date_done:
                    s.oldest_date_done = text
            if type_ == b"list":
                s.memory_sampled += 1
                s.memory_measured += max(0, int(mem_text))
            elif s.memory_sampled + len(measure) < self.sample:
                measure.append((key, s))
        self._measure(client, measure)

    def _measure(self, client: Any, measure: list[tuple[bytes, ClassStats]]) -> None:
        if not measure:
            return
        replies = client.pipeline([("MEMORY", "USAGE", key) for key, _ in measure])
        for (_, s), n in zip(measure, replies, strict=True):
            if isinstance(n, int):
                s.memory_sampled += 1
                s.memory_measured += n

    def _decide_lists(self, client: Any) -> None:
        """A list is a Celery queue when bound, or when its next item is a kombu envelope."""
        bound = {b.queue.encode() for b in self.b.bindings()}
        self.bound = bound
        unknown = [name for name in self.lists if name not in bound]
        heads = client.pipeline([("LINDEX", self.lists[n][0][0], -1) for n in unknown]) if unknown else []
        foreign = {n for n, head in zip(unknown, heads, strict=True)
                   if not (isinstance(head, bytes) and head.startswith(b"{") and b'"properties"' in head)}
        for name, entries in self.lists.items():
            for key, ttl, memory in entries:
                cls = "other" if name in foreign else \
                    ("queue" if self.layout.split_priority(key[len(self.layout.prefix):])[1] == 0
                     else "queue_priority")
                s = self.stats[cls]
                s.count += 1
                if ttl < 0:
                    s.ttl_none += 1
                else:
                    s.ttls.append(ttl)
                s.memory_sampled += 1
                s.memory_measured += max(0, memory)

    # -- findings -----------------------------------------------------------------------
    def _findings(self, client: Any) -> list[Finding]:
        from celerytool.housekeeping import fixes

        out: list[Finding] = []
        no_ttl = sum(self.stats[c].ttl_none for c in RESULT_CLASSES)
        if no_ttl:
            out.append(Finding(
                "results-without-ttl", no_ttl,
                f"{no_ttl} stored result(s) have no TTL and stay until deleted "
                "(result_expires=None or 0, or written by an old Celery)",
                "celerytool doctor --fix results-without-ttl --ttl 1d   "
                "(or: celerytool expire --ttl 1d --only-without-ttl)"))
        replies = [(k, m) for k, idle, m in self.reply_keys if idle >= self.idle]
        if replies:
            memory = sum(n for _, n in replies)
            out.append(Finding(
                "reply-lists", len(replies),
                f"{len(replies)} remote-control reply list(s) untouched for {self.idle:g}s or more: "
                "replies to a client that is gone (celery#6089)",
                "celerytool doctor --fix reply-lists", memory=memory,
                examples=[k.decode("utf-8", "replace") for k, _ in replies[:5]]))
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
