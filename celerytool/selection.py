"""The shared message selection: --task, --id, --where, --older-than, --limit.

``--where`` takes a small expression language, parsed by hand and never
evaluated by Python::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=") operand]
    operand := literal | path | "(" expr ")"
    path    := FIELD ("." NAME | "[" INTEGER | STRING "]")*
    literal := INTEGER | FLOAT | 'text' | "text" | true | false | null

Fields: id, task, args, kwargs, eta, expires, retries, priority, headers,
properties, embed, content_type, content_encoding, compression, protocol,
size, queue, error, age (seconds in flight; unacked messages only).
A missing field or index is ``null``; comparing values of different kinds
(text with a number, anything with null except by ``==``/``!=``) is false,
never an error.  A bare path is true when its value is truthy.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from celerytool.errors import UsageError

FIELDS = frozenset({
    "id", "task", "args", "kwargs", "eta", "expires", "retries", "priority", "headers",
    "properties", "embed", "content_type", "content_encoding", "compression", "protocol",
    "size", "queue", "error", "age",
})
# fields read from the message without decoding its body (see codecs.lazy)
CHEAP_FIELDS = frozenset({"id", "task", "size", "queue", "age"})
COMPARE_OPS = ("==", "!=", "<=", ">=", "<", ">")


class WhereSyntaxError(UsageError):
    """A --where expression that does not parse; the message points at the spot."""

    def __init__(self, text: str, pos: int, reason: str) -> None:
        self.text, self.pos, self.reason = text, pos, reason
        super().__init__(f"--where: {reason} at column {pos + 1}\n  {text}\n  {' ' * pos}^")


# --- tokens -------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?\d+\.\d*(?:[eE][-+]?\d+)?|-?\d+(?:[eE][-+]?\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|\.)
""", re.X)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


@dataclass(frozen=True)
class Tok:
    kind: str  # num, str, name, op, end
    value: Any
    pos: int


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] in "'\"":
                raise WhereSyntaxError(text, pos, "unterminated string")
            if text[pos] == "=":
                raise WhereSyntaxError(text, pos, "use '==' to compare")
            raise WhereSyntaxError(text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            raw = m.group()
            if kind == "num":
                value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            elif kind == "str":
                value = _unescape(raw[1:-1])
            else:
                value = raw
            out.append(Tok(kind, value, pos))
        pos = m.end()
    out.append(Tok("end", None, len(text)))
    return out


# --- syntax tree: tuples, evaluated by `evaluate` ---------------------------------------
# ("lit", value) ("path", root, (step, ...)) ("cmp", op, a, b) ("and", a, b) ("or", a, b) ("not", a)

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.roots: set[str] = set()

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, tok: Tok, reason: str) -> WhereSyntaxError:
        return WhereSyntaxError(self.text, tok.pos, reason)

    def word(self, tok: Tok, w: str) -> bool:
        return tok.kind == "name" and tok.value.lower() == w

    def parse(self) -> tuple:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "empty expression")
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, f"unexpected {_show(tok)} (expected and, or, or the end)")
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.word(self.peek(), "or"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.word(self.peek(), "and"):
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.word(self.peek(), "not"):
            self.take()
            return ("not", self.not_())
        return self.compare()

    def compare(self) -> tuple:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "op" and tok.value in COMPARE_OPS:
            self.take()
            return ("cmp", tok.value, left, self.operand())
        return left

    def operand(self) -> tuple:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return ("lit", tok.value)
        if tok.kind == "op" and tok.value == "(":
            node = self.or_()
            close = self.take()
            if not (close.kind == "op" and close.value == ")"):
                raise self.fail(close, f"expected ')' but found {_show(close)}")
            return node
        if tok.kind == "name":
            low = tok.value.lower()
            if low in ("true", "false"):
                return ("lit", low == "true")
            if low in ("null", "none"):
                return ("lit", None)
            if low in ("and", "or", "not"):
                raise self.fail(tok, f"expected a field or a value before {tok.value!r}")
            if tok.value not in FIELDS:
                raise self.fail(tok, f"unknown field {tok.value!r} (fields: {', '.join(sorted(FIELDS))})")
            self.roots.add(tok.value)
            return ("path", tok.value, tuple(self.steps()))
        raise self.fail(tok, f"expected a field or a value but found {_show(tok)}")

    def steps(self) -> list[Any]:
        steps: list[Any] = []
        while self.peek().kind == "op" and self.peek().value in (".", "["):
            tok = self.take()
            if tok.value == ".":
                name = self.take()
                if name.kind not in ("name", "num") or isinstance(name.value, float):
                    raise self.fail(name, "expected a name after '.'")
                steps.append(str(name.value))
                continue
            key = self.take()
            if key.kind == "num" and isinstance(key.value, int):
                steps.append(key.value)
            elif key.kind == "str":
                steps.append(key.value)
            else:
                raise self.fail(key, "expected an integer or a quoted key inside [ ]")
            close = self.take()
            if not (close.kind == "op" and close.value == "]"):
                raise self.fail(close, f"expected ']' but found {_show(close)}")
        return steps


def _show(tok: Tok) -> str:
    return "the end of the expression" if tok.kind == "end" else repr(str(tok.value))


@dataclass(frozen=True)
class Where:
    text: str
    tree: tuple
    roots: frozenset[str]

    def __call__(self, get: Callable[[str], Any]) -> bool:
        return bool(evaluate(self.tree, get))


def parse_where(text: str) -> Where:
    """Parse a --where expression; raise WhereSyntaxError (exit 2) with a caret."""
    p = _Parser(text)
    tree = p.parse()
    return Where(text, tree, frozenset(p.roots))


def _step(value: Any, step: Any) -> Any:
    if isinstance(step, int):
        if isinstance(value, (list, tuple)) and -len(value) <= step < len(value):
            return value[step]
        if isinstance(value, dict):
            return value.get(step, value.get(str(step)))
        return None
    if isinstance(value, dict):
        return value.get(step)
    if isinstance(value, (list, tuple)) and step.lstrip("-").isdigit():
        return _step(value, int(step))
    return None


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return _eq(a, b)
    if op == "!=":
        return not _eq(a, b)
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    num = (int, float)
    if not ((isinstance(a, num) and isinstance(b, num)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    try:
        return bool(a == b)
    except Exception:
        return False


def evaluate(node: tuple, get: Callable[[str], Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        value = get(node[1])
        for step in node[2]:
            if value is None:
                return None
            value = _step(value, step)
        return value
    if kind == "cmp":
        return _compare(node[1], evaluate(node[2], get), evaluate(node[3], get))
    if kind == "and":
        return bool(evaluate(node[1], get)) and bool(evaluate(node[2], get))
    if kind == "or":
        return bool(evaluate(node[1], get)) or bool(evaluate(node[2], get))
    if kind == "not":
        return not evaluate(node[1], get)
    raise AssertionError(kind)  # pragma: no cover


# --- durations ----------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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
        raise UsageError(f"not a duration: {text!r} (e.g. 90s, 15m, 1h30m, 2d)")
    return total


# --- the selection --------------------------------------------------------------------
class View:
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
        if self.ids and view.id() not in self.ids:
            return False
        if self._task_res:
            name = view.task()
            if name is None or not any(r.match(name) for r in self._task_res):
                return False
        if self.older_than is not None:
            age = view.get("age")
            if age is None or age < self.older_than:
                return False
        if self.where is not None and not self.where(view.get):
            return False
        return True

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
    """3600 -> '1h', 90 -> '90s', 5400 -> '90m': the largest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class MessageView(View):
    """A selection ``View`` over an already decoded Message (any broker)."""

    __slots__ = ("m",)

    def __init__(self, m: Any) -> None:
        self.m = m

    def task(self) -> str | None:
        return self.m.task

    def id(self) -> str | None:
        return self.m.id

    def get(self, name: str) -> Any:
        if name == "age":
            return self.m.extra.get("age")
        return getattr(self.m, name, None)
