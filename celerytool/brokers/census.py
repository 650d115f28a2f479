"""``summary``: a census of one queue, grouped by a field, without changing the queue.

Per value of the field (``task`` by default, or any ``--where`` path:
``priority``, ``kwargs.tenant``, ``headers.x-tenant``, ``retries``; ``eta``
is grouped by hour): how many messages, their bytes, the oldest and newest
ETA, and how many are retries.  Stored kombu envelopes (Redis) grouped by
task, eta or retries are read from the header prefix alone
(``codecs.lazy.fast_task_eta_retries``); anything else is decoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from celerytool.codecs.lazy import _V2_HEAD_RE, EnvelopeView, fast_task_eta_retries
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import UsageError
from celerytool.jsontext import to_jsonable
from celerytool.model import Message
from celerytool.selection import MessageView, Selection
from celerytool.where import evaluate, parse_where

FAST_FIELDS = ("task", "eta", "retries")
_NAN = float("nan")
Tick = Callable[[int], None]


@dataclass
class CensusRow:
    value: Any
    count: int = 0
    bytes: int = 0
    oldest_eta: str | None = None
    newest_eta: str | None = None
    retries: int = 0

    def add(self, size: int, eta: Any, retries: Any) -> None:
        self.count += 1
        self.bytes += size
        if eta.__class__ is str:  # a stored ETA of another type (a list, bytes) is no time to compare
            if self.oldest_eta is None or eta < self.oldest_eta:
                self.oldest_eta = eta
            if self.newest_eta is None or eta > self.newest_eta:
                self.newest_eta = eta
        if retries:
            self.retries += 1

    def to_json(self) -> dict[str, Any]:
        return {"value": to_jsonable(self.value), "count": self.count, "bytes": self.bytes,
                "oldest_eta": self.oldest_eta, "newest_eta": self.newest_eta, "retries": self.retries}


class Census:
    def __init__(self, by: str) -> None:
        tree = parse_where(by).tree
        if tree[0] != "path":
            raise UsageError(f"--by takes one field path (task, priority, kwargs.tenant, ...), not {by!r}")
        self.by = by
        self.root: str = tree[1]
        self.steps: tuple[Any, ...] = tree[2]
        self.fast = self.root in FAST_FIELDS and not self.steps
        self.rows: dict[Any, CensusRow] = {}
        self.examined = 0

    def key(self, value: Any) -> Any:
        """The group of a value: hashable, and equal for equal values (whatever a body holds)."""
        if self.root == "eta" and not self.steps and isinstance(value, str) and len(value) >= 13:
            return value[:13] + ":00"  # by hour
        if value.__class__ is float and value != value:
            return _NAN  # every NaN in one group (NaN != NaN; a dict finds the one object)
        if isinstance(value, (dict, list, tuple)):
            try:
                return json.dumps(value, sort_keys=True, default=str)
            except (TypeError, ValueError):  # keys of mixed or non-JSON types (a pickled body)
                return json.dumps(to_jsonable(value), sort_keys=True)
        try:
            hash(value)
        except TypeError:  # a set, a bytearray (a pickled body)
            return json.dumps(to_jsonable(value), sort_keys=True)
        return value

    def add(self, value: Any, size: int, eta: Any, retries: Any) -> None:
        k = self.key(value)
        row = self.rows.get(k)
        if row is None:
            row = self.rows[k] = CensusRow(k)
        row.add(size, eta, retries)

    def add_view(self, view: Any, size: int) -> None:
        m: Message = view.message() if hasattr(view, "message") else view.m
        value = evaluate(("path", self.root, self.steps), view.get)
        self.add(value, size, m.eta, m.retries)

    def result(self) -> list[CensusRow]:
        return sorted(self.rows.values(), key=lambda r: (-r.count, str(r.value)))


def census_of_delayed(tasks: Iterable[Any], by: str) -> Census:
    """Census of delayed tasks (``DelayedTask``: ``delayed``'s rows): task, eta / due, queue,
    waits_in, id, args, kwargs.tenant, ... (their bytes are not counted: 0)."""
    census = Census(by)
    for t in tasks:
        fields = {"task": t.task, "id": t.id, "args": t.args, "kwargs": t.kwargs, "queue": t.queue,
                  "eta": t.due, "due": t.due, "waits_in": t.waits_in}
        census.add(evaluate(("path", census.root, census.steps), fields.get), 0, t.due, None)
        census.examined += 1
    return census


def census_of_envelopes(chunks: Iterable[tuple[int, list[bytes]]], queue: str, by: str, selection: Selection,
                        limits: Limits = DEFAULT_LIMITS, tick: Tick | None = None) -> Census:
    """Census of stored kombu envelopes given in chunks: (priority bucket, [raw bytes, ...])."""
    census = Census(by)
    if census.fast and selection.is_all and selection.limit is None:
        return _fast_census(census, chunks, queue, limits, tick)
    fast = census.fast and (selection.is_all or selection.by_name_only)
    add, slow = census.add, census.add_view
    field = FAST_FIELDS.index(census.root) if census.fast else -1
    matched = 0
    for bucket, chunk in chunks:
        for raw in chunk:
            if selection.limit is not None and matched >= selection.limit:
                break
            head = fast_task_eta_retries(raw) if fast else None
            if head is not None:
                if not selection.is_all and not selection.matches_name(
                        (head[0], _id(raw) if selection.ids else ""), EnvelopeView, raw, queue, bucket, limits):
                    continue
                matched += 1
                add(head[field], len(raw), head[1], head[2])
                continue
            view = EnvelopeView(raw, queue, bucket, limits)
            if not (selection.is_all or selection.matches(view)):
                continue
            matched += 1
            slow(view, len(raw))
        if tick is not None:
            tick(len(chunk))
    census.examined = matched
    return census


def _fast_census(census: Census, chunks: Iterable[tuple[int, list[bytes]]], queue: str, limits: Limits,
                 tick: Tick | None) -> Census:
    """Every message, grouped by task, eta or retries: the header prefix alone, kept as bytes.

    The values stay bytes until the end (one decode per group, not per
    message); a message the pattern does not fit takes the general way.
    """
    search = _V2_HEAD_RE.search
    field = FAST_FIELDS.index(census.root)
    by_hour = census.root == "eta"
    acc: dict[bytes | None, list[Any]] = {}
    examined = 0
    for bucket, chunk in chunks:
        for raw in chunk:
            m = search(raw)
            if m is None:
                census.add_view(EnvelopeView(raw, queue, bucket, limits), len(raw))
                continue
            g = m.groups()
            k = g[field]
            if by_hour and k is not None:
                k = k[:13]
            a = acc.get(k)
            if a is None:
                a = acc[k] = [0, 0, None, None, 0]
            a[0] += 1
            a[1] += len(raw)
            eta = g[1]
            if eta is not None:
                if a[2] is None or eta < a[2]:
                    a[2] = eta
                if a[3] is None or eta > a[3]:
                    a[3] = eta
            if g[2] != b"0":
                a[4] += 1
        examined += len(chunk)
        if tick is not None:
            tick(len(chunk))
    for k, (count, size, oldest, newest, retries) in acc.items():
        value: Any = None if k is None else (int(k) if field == 2 else k.decode("utf-8", "replace"))
        if by_hour and value is not None:
            value += ":00"
        row = census.rows.get(value)
        if row is None:
            row = census.rows[value] = CensusRow(value)
        row.count += count
        row.bytes += size
        row.retries += retries
        for eta in (oldest, newest):
            if eta is not None:
                text = eta.decode("utf-8", "replace")
                row.oldest_eta = text if row.oldest_eta is None or text < row.oldest_eta else row.oldest_eta
                row.newest_eta = text if row.newest_eta is None or text > row.newest_eta else row.newest_eta
    census.examined = examined
    return census


def _id(raw: bytes) -> str:
    from celerytool.codecs.lazy import fast_task_id

    found = fast_task_id(raw)
    return found[1] if found else ""


def census_of_messages(messages: Iterator[Message], by: str, selection: Selection,
                       tick: Tick | None = None) -> Census:
    """Census of decoded messages (any broker)."""
    census = Census(by)
    matched = 0
    for m in messages:
        if selection.limit is not None and matched >= selection.limit:
            break
        view = MessageView(m)
        if not (selection.is_all or selection.matches(view)):
            continue
        matched += 1
        census.add_view(view, m.size)
        if tick is not None:
            tick(1)
    census.examined = matched
    return census
