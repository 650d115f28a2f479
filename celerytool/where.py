"""The ``--where`` language: a small expression language, parsed by hand and never
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

An expression is bounded so that parsing and evaluating it cannot fail on
size: at most MAX_NESTING levels of parentheses and ``not``, MAX_TERMS
operands, numbers of at most MAX_NUMBER_CHARS characters; past that it is a
usage error pointing at the spot.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celerytool.errors import UsageError

FIELDS = frozenset({
    "id", "task", "args", "kwargs", "eta", "expires", "retries", "priority", "headers",
    "properties", "embed", "content_type", "content_encoding", "compression", "protocol",
    "size", "queue", "error", "age", "x_death",
})
# fields read from the message without decoding its body (see codecs.lazy)
CHEAP_FIELDS = frozenset({"id", "task", "size", "queue", "age"})
COMPARE_OPS = ("==", "!=", "<=", ">=", "<", ">")
MAX_NESTING = 100  # parentheses and `not`, together
MAX_TERMS = 500  # operands (fields and values)
MAX_NUMBER_CHARS = 100


class WhereSyntaxError(UsageError):
    """A --where expression that does not parse; the message points at the spot."""

    def __init__(self, text: str, pos: int, reason: str) -> None:
        self.text, self.pos, self.reason = text, pos, reason
        shown, at = _excerpt(text, pos)
        super().__init__(f"--where: {reason} at column {pos + 1}\n  {shown}\n  {' ' * at}^")


def _excerpt(text: str, pos: int, width: int = 60) -> tuple[str, int]:
    """``text`` cut to about ``width`` characters around ``pos``, and where ``pos`` is in it."""
    if len(text) <= 2 * width:
        return text, pos
    start = max(0, pos - width // 2)
    shown = text[start:start + width]
    prefix = "..." if start else ""
    return prefix + shown + ("..." if start + width < len(text) else ""), len(prefix) + pos - start


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
                if len(raw) > MAX_NUMBER_CHARS:
                    raise WhereSyntaxError(text, pos, f"number longer than {MAX_NUMBER_CHARS} characters")
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
# ("lit", value) ("path", root, (step, ...)) ("cmp", op, a, b) ("and", a, b, ...) ("or", a, b, ...)
# ("not", a).  `and` / `or` chains are flat, so a long chain does not make the tree deep.

class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.roots: set[str] = set()
        self.depth = 0  # open parentheses and `not`
        self.terms = 0

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
        items = [self.and_()]
        while self.word(self.peek(), "or"):
            self.take()
            items.append(self.and_())
        return ("or", *items) if len(items) > 1 else items[0]

    def and_(self) -> tuple:
        items = [self.not_()]
        while self.word(self.peek(), "and"):
            self.take()
            items.append(self.not_())
        return ("and", *items) if len(items) > 1 else items[0]

    def not_(self) -> tuple:
        count = 0
        while self.word(self.peek(), "not"):
            self.nest(self.take())
            count += 1
        node = self.compare()
        self.depth -= count
        for _ in range(count):
            node = ("not", node)
        return node

    def nest(self, tok: Tok) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(tok, f"nested more than {MAX_NESTING} levels (parentheses and not)")

    def compare(self) -> tuple:
        left = self.operand()
        tok = self.peek()
        if tok.kind == "op" and tok.value in COMPARE_OPS:
            self.take()
            return ("cmp", tok.value, left, self.operand())
        return left

    def operand(self) -> tuple:
        tok = self.take()
        if tok.kind in ("num", "str", "name"):
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise self.fail(tok, f"more than {MAX_TERMS} fields and values in one expression")
        if tok.kind in ("num", "str"):
            return ("lit", tok.value)
        if tok.kind == "op" and tok.value == "(":
            self.nest(tok)
            node = self.or_()
            close = self.take()
            if not (close.kind == "op" and close.value == ")"):
                raise self.fail(close, f"expected ')' but found {_show(close)}")
            self.depth -= 1
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

    def steps(self) -> list[str | int]:
        steps: list[str | int] = []
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


def _step(value: Any, step: str | int) -> Any:
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
    return bool(_ORDER[op](a, b))  # two numbers or two strings


_ORDER: dict[str, Callable[[Any, Any], Any]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                 ">=": operator.ge}


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
        return all(evaluate(n, get) for n in node[1:])
    if kind == "or":
        return any(evaluate(n, get) for n in node[1:])
    if kind == "not":
        return not evaluate(node[1], get)
    raise AssertionError(kind)  # pragma: no cover


# --- durations ----------------------------------------------------------------------
