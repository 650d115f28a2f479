"""The shared message selection: --task, --id, --where, --older-than, --limit.

``--where`` is parsed and evaluated by ``celerytool.where``; this module
combines it with the other selectors, durations and the message view the
expressions read.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from celerytool.errors import UsageError
from celerytool.where import Where, parse_where

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# the longest duration any option takes (--since, --older-than, --ttl, --countdown, ...): now
# minus it is still a date-time (the year 1 is 2000 years away), and as milliseconds it fits
# Redis's PEXPIRE (a 64-bit value) many times over
MAX_DURATION = 365000 * 86400.0  # 1000 years
MAX_DURATION_SHOWN = "365000d (1000 years)"


def parse_duration(text: str) -> float:
    """'90s', '15m', '1h30m', '2d', '500ms' or plain seconds -> seconds."""
    s = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UsageError(f"not a duration: {text!r} (e.g. 90, 90s, 1h30m, 2d, 500ms)")
    return total


# --- the selection --------------------------------------------------------------------
class View(Protocol):
    """What a selection reads: a message, decoded only as far as needed."""

    def task(self) -> str | None: ...  # pragma: no cover
    def id(self) -> str | None: ...  # pragma: no cover
    def get(self, name: str) -> Any: ...  # pragma: no cover


@dataclass(frozen=True)
class Selection:
    tasks: tuple[str, ...] = ()
    ids: frozenset[str] = frozenset()
    where: Where | None = None
    older_than: float | None = None
    limit: int | None = None
    _task_res: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def build(cls, tasks: Sequence[str] = (), ids: Sequence[str] = (), where: str | None = None,
              older_than: str | float | None = None, limit: int | None = None) -> Selection:
        age = parse_duration(older_than) if isinstance(older_than, str) else older_than
        return cls(tuple(tasks), frozenset(ids), parse_where(where) if where else None, age, limit,
                   tuple(re.compile(fnmatch.translate(g)) for g in tasks))

    @property
    def empty(self) -> bool:
        """True when every message is selected (no filter and no limit)."""
        return self.is_all and self.limit is None

    @property
    def is_all(self) -> bool:
        return not (self.tasks or self.ids or self.where or self.older_than is not None)

    @property
    def needs_age(self) -> bool:
        return self.older_than is not None or (self.where is not None and "age" in self.where.roots)

    @property
    def by_name_only(self) -> bool:
        """Only --task / --id: decided from (task, id) alone."""
        return bool(self.tasks or self.ids) and self.where is None and self.older_than is None

    def matches_name(self, task_id: tuple[str, str] | None, *fallback: Any) -> bool:
        """``matches`` for a ``by_name_only`` selection given (task, id) read cheaply.

        ``fallback`` is (make_view, *args): used to build a full view when the
        cheap read found nothing.
        """
        if task_id is None:
            make, *args = fallback
            return self.matches(make(*args))
        task, tid = task_id
        if self.ids and tid not in self.ids:
            return False
        return not self._task_res or any(r.match(task) for r in self._task_res)

    def require_no_age(self, what: str) -> None:
        if self.needs_age:
            raise UsageError(f"--older-than and 'age' need a known age; {what} carry none "
                             "(they work with unacked and requeue)")

    def matches(self, view: View) -> bool:
        if self.ids:
            tid = view.id()
            if not isinstance(tid, str) or tid not in self.ids:  # a stored id may be any JSON value
                return False
        if self._task_res:
            name = view.task()
            if not isinstance(name, str) or not any(r.match(name) for r in self._task_res):
                return False
        if self.older_than is not None:
            age = view.get("age")
            if age is None or age < self.older_than:
                return False
        if self.where is not None and not self.where(view.get):
            return False
        return True

    def and_where(self, text: str) -> Selection:
        """This selection, narrowed by one more ``--where`` condition."""
        combined = f"({self.where.text}) and ({text})" if self.where is not None else text
        return replace(self, where=parse_where(combined))

    def describe(self) -> str:
        parts = [f"task {' or '.join(self.tasks)}"] if self.tasks else []
        if self.ids:
            parts.append(f"{len(self.ids)} id(s)")
        if self.where:
            parts.append(f"where {self.where.text}")
        if self.older_than is not None:
            parts.append(f"older than {format_duration(self.older_than)}")
        return ", ".join(parts) or "all messages"

    def tally(self) -> Tally:
        """This selection, counting what it is asked about (for "none of N matched")."""
        return Tally(self)


class Tally:
    """A Selection that counts: ``examined``, ``matched``, and ``younger`` (refused for age only)."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.examined = self.matched = self.younger = 0
        self._ageless = replace(selection, older_than=None) if selection.older_than is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.selection, name)

    def matches(self, view: View) -> bool:
        self.examined += 1
        if self.selection.matches(view):
            self.matched += 1
            return True
        if self._ageless is not None and self._ageless.matches(view):
            self.younger += 1
        return False

    def none_matched(self, where: str) -> str:
        """'none of the 12 messages examined in X matched task t.*' (or: none older than 1h; 4 younger)."""
        sel = self.selection
        if sel.older_than is not None and self.younger and self.younger == self.examined:
            return f"none older than {format_duration(sel.older_than)}; {self.younger} younger"
        text = f"none of the {self.examined} message(s) {where} matched {sel.describe()}"
        return text + (f" ({self.younger} younger)" if self.younger else "")


def format_duration(seconds: float) -> str:
    """3600 -> '1h', 90 -> '90s', 5400 -> '90m', 0.5 -> '500ms': the largest unit that divides it."""
    if 0 < seconds < 1 and round(seconds * 1000, 6) == int(round(seconds * 1000, 6)):
        return f"{int(round(seconds * 1000))}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Named(Protocol):
    """A decoded Message (any broker), or a record that names a task the same way (a worker's
    ``TaskRow``); ``extra`` (Message's adapter-specific fields) is read when it has one."""

    @property
    def id(self) -> str | None: ...  # pragma: no cover
    @property
    def task(self) -> str | None: ...  # pragma: no cover


class MessageView(View):
    """A selection ``View`` over an already decoded Message (any broker)."""

    __slots__ = ("m",)

    def __init__(self, m: Named) -> None:
        self.m = m

    def task(self) -> str | None:
        return self.m.task

    def id(self) -> str | None:
        return self.m.id

    def get(self, name: str) -> Any:
        if name in ("age", "x_death"):  # adapter-specific fields (Message.extra)
            return getattr(self.m, "extra", {}).get(name)
        return getattr(self.m, name, None)
