"""Bounded label values: a budget of distinct values per label, the rest as ``other``.

Everything here comes from the wire (event fields, queue names), so each value
is coerced to a short string first: a hostile event can neither grow the
series set without bound nor put a megabyte into a label.
"""

from __future__ import annotations

import math
import re
from typing import Any

OTHER = "other"
MAX_LABEL_CHARS = 200
_EXCEPTION = re.compile(r"^\s*([A-Za-z_][\w.]{0,199})\s*(?:\(|:|$)")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def short(value: Any) -> str:
    """A label value: strings (and numbers) as text, cut to MAX_LABEL_CHARS; anything else ''."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return ""
    return str(value)[:MAX_LABEL_CHARS]


def number(value: Any, maximum: float = 1e12) -> float | None:
    """A finite, non-negative number below ``maximum``, or None (strings, NaN, 1e308 are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    if not math.isfinite(f) or f < 0 or f > maximum:
        return None
    return f


def exception_class(text: Any) -> str:
    """``KeyError('x')`` -> ``KeyError`` (the label celery-exporter uses); else ``UnknownException``."""
    m = _EXCEPTION.match(short(text))
    return m.group(1) if m else "UnknownException"


def worker_host(name: str) -> str:
    """``celery@host`` -> ``host`` (``--worker-label host``, as celery-exporter labels workers)."""
    return name.split("@", 1)[1] if "@" in name else name


def check_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name)) and not name.startswith("__")


def check_prefix(prefix: str) -> bool:
    return prefix == "" or bool(_PREFIX.match(prefix))


class LabelBudget:
    """The first ``limit`` distinct values keep their name; later ones are ``other``.

    ``release`` frees a value's place (a forgotten worker), so a fleet that
    replaces its workers keeps naming the new ones.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: set[str] = set()
        self.overflowed = 0  # values that went to ``other``, for the log

    def __call__(self, value: str) -> str:
        if value in self.kept:
            return value
        if len(self.kept) < self.limit and value != OTHER:
            self.kept.add(value)
            return value
        self.overflowed += 1
        return OTHER

    def release(self, value: str) -> None:
        self.kept.discard(value)
