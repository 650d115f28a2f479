"""kombu's Redis binding tables and its routing: the one parser and the one router.

A binding is a member ``routing_key<sep>pattern<sep>queue`` of the set
``<keyprefix>_kombu.binding.<exchange>`` (wire-format section 3.3).  Which
queues a message reaches is kombu's ``Channel._lookup``: the nameless
exchange routes to the queue named by the routing key; otherwise the
exchange type's ``lookup`` over that table (``kombu.transport.virtual.exchange``):

- direct: rows whose routing key equals the message's;
- topic: rows whose stored pattern (a regex made by ``key_to_pattern``) matches
  the routing key with ``re.match`` (so an empty pattern matches every key);
- fanout: every bound queue (a publish uses PUB/SUB instead, see ``publish``).

The exchange type lives in the publishing process's memory, not in Redis:
it is given (``send --exchange-type``), or Celery's own fanout exchanges
(``celery.pidbox``, ``celeryev``), or inferred: topic when any row has a
pattern, else direct.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from celerytool.kombu_layout import (  # noqa: F401  (re-exported: the Redis package's names)
    BINDING_PERMANENT_PREFIX,
    BINDING_PREFIX,
    EVENT_EXCHANGE,
    PIDBOX_EXCHANGE,
)

# Celery declares these as fanout on Redis (remote control; events are forced to fanout).
FANOUT_EXCHANGES = frozenset({PIDBOX_EXCHANGE, EVENT_EXCHANGE})
EXCHANGE_TYPES = ("direct", "topic", "fanout")


@dataclass(frozen=True)
class BindingRow:
    routing_key: str
    pattern: str
    queue: str


def text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def parse_member(member: bytes | str, sep: str) -> BindingRow | None:
    """One member of a binding set, or None when it is not kombu's three fields."""
    parts = text(member).split(sep)
    if len(parts) < 3:
        return None
    return BindingRow(parts[0], parts[1], sep.join(parts[2:]))


def binding_member(queue: str, sep: str, routing_key: str | None = None, pattern: str = "") -> str:
    """The member kombu's ``queue_bind`` writes (Celery's ``declare=[queue]``: key = queue)."""
    return sep.join([queue if routing_key is None else routing_key, pattern, queue])


_compiled: dict[str, Callable[[str], object]] = {}


def _match(pattern: str, routing_key: str) -> bool:
    fn = _compiled.get(pattern)
    if fn is None:
        try:
            fn = re.compile(pattern, re.U).match
        except re.error:  # a row no kombu would write: it routes nothing
            fn = _never
        _compiled[pattern] = fn
    return fn(routing_key) is not None


def _never(_: str) -> None:
    return None


def infer_type(exchange: str, rows: Iterable[BindingRow]) -> str:
    if exchange in FANOUT_EXCHANGES:
        return "fanout"
    return "topic" if any(r.pattern for r in rows) else "direct"


def lookup(exchange: str, routing_key: str, rows: Iterable[BindingRow], kind: str) -> list[str]:
    """The queues kombu's ``_lookup`` delivers to, sorted (kombu returns a set)."""
    if not exchange:
        return [routing_key] if routing_key else []
    if kind == "fanout":
        found = {r.queue for r in rows}
    elif kind == "topic":
        found = {r.queue for r in rows if _match(r.pattern, routing_key)}
    else:
        found = {r.queue for r in rows if r.routing_key == routing_key}
    return sorted(found)


class BindingTables:
    """The binding tables of one Redis database, read once per exchange and cached.

    ``smembers(key)`` reads one set (the caller wraps it in its error handling).
    """

    def __init__(self, smembers: Callable[[str], Iterable[bytes | str]], prefix: str, sep: str) -> None:
        self._smembers = smembers
        self.prefix = prefix
        self.sep = sep
        self._rows: dict[str, list[BindingRow]] = {}

    def rows(self, exchange: str) -> list[BindingRow]:
        rows = self._rows.get(exchange)
        if rows is None:
            members = self._smembers(self.prefix + BINDING_PREFIX + exchange)
            rows = self._rows[exchange] = [r for r in map(self._parse, members) if r is not None]
        return rows

    def _parse(self, member: bytes | str) -> BindingRow | None:
        return parse_member(member, self.sep)

    def kind(self, exchange: str, given: str | None = None) -> str:
        if exchange in FANOUT_EXCHANGES:
            return "fanout"
        return given or infer_type(exchange, self.rows(exchange))

    def route(self, exchange: str, routing_key: str, given_type: str | None = None) -> list[str]:
        if not exchange:
            return lookup(exchange, routing_key, (), "direct")
        return lookup(exchange, routing_key, self.rows(exchange), self.kind(exchange, given_type))
