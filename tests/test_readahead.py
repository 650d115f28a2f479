"""readahead: a producer in a forked child, its items in order, its errors with their exit codes,
and no child left behind however the caller stops."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from celerytool.errors import CeleryToolError, DataError, ExitCode
from celerytool.ids import uuid4_strings
from celerytool.readahead import read_ahead


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_items_arrive_in_order_from_another_process():
    got = list(read_ahead(lambda: ((i, os.getpid()) for i in range(10_007)), batch=100))
    assert [i for i, _ in got] == list(range(10_007))
    pids = {pid for _, pid in got}
    assert len(pids) == 1 and pids != {os.getpid()}
    assert _gone(pids.pop())  # reaped once the items ran out


def test_disabled_runs_here():
    assert {pid for pid in read_ahead(lambda: (os.getpid() for _ in range(3)), enabled=False)} == {os.getpid()}


def test_an_error_comes_after_the_items_before_it_with_its_exit_code():
    def produce():
        yield from range(5)
        raise DataError("wrong key type at celery-task-meta-x")

    items = read_ahead(produce, batch=2)
    got = []
    with pytest.raises(CeleryToolError) as info:
        for item in items:
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    assert info.value.exit_code == ExitCode.DATA and "wrong key type" in info.value.message


def test_a_bug_in_the_child_is_exit_70_with_its_line():
    def produce():
        yield 1
        raise ZeroDivisionError("boom")

    with pytest.raises(CeleryToolError) as info:
        list(read_ahead(produce))
    assert info.value.exit_code == ExitCode.SOFTWARE and "ZeroDivisionError: boom" in info.value.message


@pytest.mark.parametrize("how", ["close", "drop", "never-read"])
def test_stopping_early_kills_and_reaps_the_child(how):
    def produce():
        yield os.getpid()
        while True:  # endless, and blocks on the full pipe: only a kill ends it
            yield "x" * 1000

    items = read_ahead(produce, batch=1)
    if how == "never-read":
        pid = items.pid  # type: ignore[attr-defined]
    else:
        pid = next(items)
    time.sleep(0.2)
    assert not _gone(pid)
    if how == "close":
        items.close()  # type: ignore[attr-defined]
    del items
    assert _gone(pid)  # killed and reaped: no zombie either (kill(pid, 0) finds a zombie)


def test_uuid4_strings_are_uuid4_text():
    ids = uuid4_strings()
    seen = set()
    for _ in range(20_000):
        text = next(ids)
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 20_000
