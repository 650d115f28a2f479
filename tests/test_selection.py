"""Unit tests for the --where language, durations and Selection (no broker)."""

from __future__ import annotations

import pytest

from celerytool.errors import ExitCode, UsageError
from celerytool.selection import Selection, parse_duration
from celerytool.where import WhereSyntaxError, parse_where

MSG = {
    "task": "tasks.add", "id": "abc", "args": [5, "x", [1, 2]], "kwargs": {"name": "bob", "n": 3},
    "eta": "2030-01-01T00:00:00+00:00", "retries": 2, "priority": 5,
    "headers": {"x-tenant": "acme", "retries": 2}, "expires": None,
}


def ev(text: str) -> bool:
    return parse_where(text)(MSG.get)


@pytest.mark.parametrize("text,expected", [
    ("args[0] == 5", True), ("args[0] != 5", False), ("args[0] < 6", True), ("args[0] <= 5", True),
    ("args[0] > 5", False), ("args[0] >= 5", True), ("args[1] == 'x'", True), ('args[1] == "x"', True),
    ("args[2][1] == 2", True), ("args[-1][0] == 1", True), ("args[9] == null", True),
    ("kwargs.name == 'bob'", True), ("kwargs['name'] == 'bob'", True), ("kwargs.missing == null", True),
    ("kwargs.name == 'bob' and retries == 2", True), ("kwargs.name == 'al' or retries == 2", True),
    ("not kwargs.name == 'bob'", False), ("not (retries == 1 or retries == 3)", True),
    ("(args[0] == 1 or args[0] == 5) and task == 'tasks.add'", True),
    ("headers.x-tenant == 'acme'", True), ("eta > '2029-12-31'", True), ("eta < '2029'", False),
    ("expires == null", True), ("expires != null", False), ("priority >= 5", True),
    ("args[1] > 3", False),  # text vs number: false, not an error
    ("expires < 3", False), ("kwargs.n == 3.0", True), ("retries == true", False),
    ("kwargs.name", True), ("kwargs.nope", False), ("id == 'abc' and not task == 'x'", True),
    ("TRUE", True), ("retries == 2 OR retries == 9", True),
])
def test_where_evaluates(text, expected):
    assert ev(text) is expected


@pytest.mark.parametrize("text,column,fragment", [
    ("args[0] >= 5 and", 17, "expected a field or a value"),
    ("args[0] = 5", 9, "use '=='"),
    ("kwargs.name == 'bob", 16, "unterminated string"),
    ("(retries == 1", 14, "expected ')'"),
    ("tsk == 'x'", 1, "unknown field 'tsk'"),
    ("args[x] == 1", 6, "integer or a quoted key"),
    ("retries == 1 retries", 14, "unexpected"),
    ("", 1, "empty expression"),
    ("retries == 1 $", 14, "unexpected character"),
    ("and retries", 1, "expected a field or a value"),
])
def test_where_errors_point_at_the_spot(text, column, fragment):
    with pytest.raises(WhereSyntaxError) as info:
        parse_where(text)
    err = info.value
    assert err.exit_code == ExitCode.USAGE
    assert fragment in err.reason
    assert err.pos + 1 == column
    caret_line = err.message.splitlines()[-1]
    assert caret_line.index("^") - 2 == err.pos


def test_where_is_never_eval():
    with pytest.raises(WhereSyntaxError):
        parse_where("__import__('os').system('true')")


@pytest.mark.parametrize("text,seconds", [
    ("90", 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("500ms", 0.5), ("1w", 604800),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "1h 2", "-5m"])
def test_bad_durations(text):
    with pytest.raises(UsageError):
        parse_duration(text)


class V:
    def __init__(self, **f):
        self.f = f

    def task(self):
        return self.f.get("task")

    def id(self):
        return self.f.get("id")

    def get(self, name):
        return self.f.get(name)


def test_selection_combines_all_filters():
    sel = Selection.build(tasks=["tasks.*", "other.x"], ids=["1", "2"], where="args[0] > 1", older_than="1m")
    assert sel.matches(V(task="tasks.add", id="1", args=[2], age=61))
    assert not sel.matches(V(task="tasks.add", id="3", args=[2], age=61))
    assert not sel.matches(V(task="nope.add", id="1", args=[2], age=61))
    assert not sel.matches(V(task="tasks.add", id="1", args=[1], age=61))
    assert not sel.matches(V(task="tasks.add", id="1", args=[2], age=59))
    assert not sel.matches(V(task="tasks.add", id="1", args=[2], age=None))
    assert Selection.build().empty and not Selection.build(limit=3).empty


def test_task_glob_is_anchored():
    sel = Selection.build(tasks=["tasks.add"])
    assert sel.matches(V(task="tasks.add"))
    assert not sel.matches(V(task="tasks.add_more"))
    assert not sel.matches(V(task="x.tasks.add"))
