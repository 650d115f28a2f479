"""``failures``: failed results grouped by exception (message folded), task, worker or queue.

A message is folded into a group key by replacing every variable token (a
uuid, a long hex id, a run of digits) with ``#``; the group's shown message
keeps the tokens that were the same in every member, so ten timeouts to
``10.0.0.1``..``10.0.0.9`` read ``Timeout connecting to 10.0.0.# after # s``.
Memory is one small record per group (plus every id with ``keep_ids``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from celerytool.jsontext import short_repr
from celerytool.model import TaskResult

GROUP_FIELDS = ("exception", "task", "worker", "queue")
MAX_TASKS_SHOWN = 20  # task names kept per group (the count of the rest is kept too)
MAX_MESSAGE = 300  # characters of the first message line kept

# one variable token: a uuid, a hex id of 8+ characters with a digit in it, or a run of digits
_TOKEN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"
    r"|\d+"
)


def parse_by(text: str) -> tuple[str, ...]:
    """``exception``, ``task``, ``task,exception``... -> the grouping fields (ValueError if unknown)."""
    fields = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    bad = [f for f in fields if f not in GROUP_FIELDS]
    if not fields or bad:
        raise ValueError(f"expected one or more of {', '.join(GROUP_FIELDS)} (comma-separated), not {text!r}")
    return fields


def first_line(text: str | None) -> str:
    if not text:
        return ""
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def fold(message: str) -> tuple[str, list[str]]:
    """'Timeout to 10.0.0.3 after 5 s' -> ('Timeout to #.#.#.# after # s', ['10', '0', '0', '3', '5'])."""
    tokens: list[str] = []

    def keep(match: re.Match[str]) -> str:
        tokens.append(match.group(0))
        return "#"

    return _TOKEN.sub(keep, message), tokens


def last_traceback_line(traceback: object) -> str:
    if not isinstance(traceback, str):
        return ""
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return first_line(lines[-1]) if lines else ""


def label(value: object) -> str | None:
    """A stored name, worker or queue as group text: a value of another type (a number, a
    list: a broken or hostile producer) as its short JSON text, so groups stay comparable."""
    if value is None or isinstance(value, str):
        return value
    return short_repr(value, MAX_MESSAGE)


def exception_type(r: TaskResult) -> str:
    if r.exception and r.exception.get("type"):
        return str(r.exception["type"])
    if r.status == "REVOKED":
        return "revoked"
    return "(unknown)" if r.error is None else "(undecodable)"


@dataclass
class Group:
    """One group of failures, built up one result at a time."""

    key: dict[str, str | None]
    template: str = ""  # the folded message (the key part), when grouping by exception
    tokens: list[str | None] = field(default_factory=list)  # None where members differ
    count: int = 0
    first: str | None = None
    last: str | None = None
    tasks: dict[str, int] = field(default_factory=dict)
    tasks_more: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)
    example_id: str = ""
    last_traceback: str = ""
    ids: list[str] | None = None

    def add(self, r: TaskResult, tokens: list[str] | None, keep_ids: bool) -> None:
        self.count += 1
        done = r.date_done
        if tokens is not None:
            if self.count == 1:
                self.tokens = list(tokens)
            else:
                self.tokens = [a if a == b else None for a, b in zip(self.tokens, tokens, strict=False)]
        name = label(r.name) or "?"
        if name in self.tasks or len(self.tasks) < MAX_TASKS_SHOWN:
            self.tasks[name] = self.tasks.get(name, 0) + 1
        else:
            self.tasks_more += 1
        kind = exception_type(r)
        if kind in self.exceptions or len(self.exceptions) < MAX_TASKS_SHOWN:
            self.exceptions[kind] = self.exceptions.get(kind, 0) + 1
        if done is not None and (self.first is None or done < self.first):
            self.first = done
        if self.count == 1 or (done is not None and (self.last is None or done >= self.last)):
            self.last = done if done is not None else self.last
            self.example_id = r.id
            self.last_traceback = last_traceback_line(r.traceback) or self.last_traceback
        if keep_ids:
            if self.ids is None:
                self.ids = []
            self.ids.append(r.id)

    @property
    def message(self) -> str:
        """The folded message, keeping the tokens every member shares."""
        if not self.template:
            return ""
        shared = iter(self.tokens)
        return re.sub("#", lambda _m: next(shared, None) or "#", self.template)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.key)
        if "exception" in self.key:
            out["message"] = self.message
        out.update({
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "tasks": sorted(self.tasks, key=lambda t: (-self.tasks[t], t)),
            "exceptions": sorted(self.exceptions, key=lambda e: (-self.exceptions[e], e)),
            "example_id": self.example_id,
            "last_traceback": self.last_traceback,
        })
        if self.tasks_more:
            out["tasks_more"] = self.tasks_more
        if self.ids is not None:
            out["ids"] = self.ids
        return out


class Grouper:
    """Failed results -> groups, keyed by ``by`` (see ``parse_by``)."""

    def __init__(self, by: tuple[str, ...], *, keep_ids: bool = False) -> None:
        self.by = by
        self.keep_ids = keep_ids
        self.groups: dict[tuple[str | None, ...], Group] = {}
        self.examined = 0

    def add(self, r: TaskResult) -> None:
        key: dict[str, str | None] = {}
        template, tokens = "", None
        for f in self.by:
            if f == "exception":
                key["exception"] = exception_type(r)
                message = (r.exception or {}).get("message") if r.exception else (r.error or "")
                template, tokens = fold(first_line(str(message or "")))
            elif f == "task":
                key["task"] = label(r.name)
            elif f == "worker":
                key["worker"] = label(r.worker)
            else:
                key["queue"] = label(r.queue)
        ident = (*key.values(), template)
        group = self.groups.get(ident)
        if group is None:
            group = self.groups[ident] = Group(key=key, template=template)
        group.add(r, tokens, self.keep_ids)

    def add_all(self, results: Iterable[TaskResult]) -> Grouper:
        for r in results:
            self.examined += 1
            self.add(r)
        return self

    def sorted(self) -> list[Group]:
        """Most frequent first; ties: most recent first."""
        by_last = sorted(self.groups.values(), key=lambda g: g.last or "", reverse=True)
        return sorted(by_last, key=lambda g: -g.count)
