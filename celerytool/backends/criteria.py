"""Which stored results ``forget`` / ``expire`` act on, what they report, and what a store offers."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from celerytool.backends.query import ResultBackend


@dataclass(frozen=True)
class Criteria:
    """Which stored results: all of the given conditions (none given: every result)."""

    ids: tuple[str, ...] = ()
    statuses: frozenset[str] = frozenset()
    tasks: tuple[str, ...] = ()
    older_than: float | None = None  # seconds since date_done

    @classmethod
    def build(cls, ids: Sequence[str] = (), statuses: Sequence[str] = (), tasks: Sequence[str] = (),
              older_than: float | None = None) -> Criteria:
        wanted = frozenset(s.strip().upper() for item in statuses for s in item.split(",") if s.strip())
        return cls(tuple(dict.fromkeys(i.strip() for i in ids if i.strip())), wanted, tuple(tasks), older_than)

    @property
    def empty(self) -> bool:
        return not (self.ids or self.statuses or self.tasks or self.older_than is not None)

    @property
    def needs_value(self) -> bool:
        return bool(self.statuses or self.tasks or self.older_than is not None)

    def describe(self) -> str:
        parts = []
        if self.ids:
            parts.append(f"{len(self.ids)} id(s)")
        if self.statuses:
            parts.append("status " + "/".join(sorted(self.statuses)))
        if self.tasks:
            parts.append("task " + " or ".join(self.tasks))
        if self.older_than is not None:
            parts.append(f"done more than {self.older_than:g}s ago")
        return ", ".join(parts) or "every stored result"

    def matches(self, status: object, name: object, date_done: object, now: float) -> bool:
        """Over a stored meta's fields, which may be any decoded value (a list, a number)."""
        if self.statuses and not (isinstance(status, str) and status in self.statuses):
            return False
        if self.tasks and not (isinstance(name, str) and any(fnmatch.fnmatchcase(name, g) for g in self.tasks)):
            return False
        if self.older_than is not None:
            when = _epoch(date_done)
            if when is None or now - when < self.older_than:
                return False
        return True


def _epoch(text: object) -> float | None:
    if not text or not isinstance(text, str):
        return None
    try:
        value = dt.datetime.fromisoformat(text)
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    except (ValueError, OverflowError):
        return None


@dataclass
class ResultOp:
    """What forget / expire did; ``to_json`` is the command's JSON summary."""

    action: str  # forget | expire
    examined: int = 0
    matched: int = 0
    done: int = 0
    undecodable: int = 0
    interrupted: bool = False
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        word = "deleted" if self.action == "forget" else "expiry_set"
        out = {"examined": self.examined, "matched": self.matched, word: self.done}
        if self.undecodable:
            out["undecodable"] = self.undecodable
        return {**out, **self.extra, "dry_run": self.dry_run, "interrupted": self.interrupted}


class Progress(Protocol):
    """What ``forget`` / ``expire`` need of the command's control (``brokers.base.Control``,
    which this layer cannot import): report progress, learn it should stop."""

    dry_run: bool

    def tick(self, n: int, /) -> None: ...

    def stop(self) -> bool: ...


class ResultChanges(Protocol):
    """What every result backend offers besides reading (``forget`` / ``expire``)."""

    def forget(self, criteria: Criteria, control: Progress) -> ResultOp: ...

    def expire(self, criteria: Criteria, ttl: float, *, only_without_ttl: bool,
               control: Progress) -> ResultOp: ...

    def close(self) -> None: ...


class ResultStore(ResultBackend, ResultChanges, Protocol):
    """A result backend that reads and changes: what ``backends.open_backend`` opens."""
