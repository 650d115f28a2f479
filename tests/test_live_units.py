"""Pure parts of the live commands: signal names, id files, event filters, top's arithmetic."""

from __future__ import annotations

import pytest

from celerytool.control.events import EventFilter
from celerytool.control.inspect import pool_name, task_rows
from celerytool.control.records import WorkerInfo, iso_time
from celerytool.control.revoke import read_ids, signal_name
from celerytool.control.top import TopState
from celerytool.errors import UsageError
from celerytool.model import QueueInfo
from celerytool.render.top import sparkline


@pytest.mark.parametrize("text, name", [("kill", "SIGKILL"), ("SIGTERM", "SIGTERM"), ("9", "SIGKILL"),
                                        ("usr1", "SIGUSR1")])
def test_signal_names(text, name):
    assert signal_name(text) == name


@pytest.mark.parametrize("text", ["NOPE", "999", "SIG"])
def test_bad_signals_are_usage_errors(text):
    with pytest.raises(UsageError):
        signal_name(text)


def test_read_ids_skips_blanks_comments_duplicates():
    assert read_ids(["a\n", "\n", "  # note\n", " b \n", "a\n"]) == ["a", "b"]


def test_pool_names():
    assert pool_name("celery.concurrency.prefork:TaskPool") == "prefork"
    assert pool_name("celery.concurrency.thread:TaskPool") == "threads"
    assert pool_name("celery.concurrency.solo:TaskPool") == "solo"
    assert pool_name(None) is None


def test_task_rows_from_scheduled_and_active_replies():
    scheduled = [{"eta": "2030-01-01T00:00:00+00:00", "priority": 6,
                  "request": {"id": "i1", "name": "t.x", "args": [1], "kwargs": {"k": 2},
                              "time_start": None, "delivery_info": {"routing_key": "q"}}}]
    (row,) = task_rows("w@h", "scheduled", scheduled)
    assert (row.id, row.task, row.args, row.kwargs, row.eta, row.priority, row.queue) == (
        "i1", "t.x", [1], {"k": 2}, "2030-01-01T00:00:00+00:00", 6, "q")
    (row,) = task_rows("w@h", "active", [{"id": "i2", "name": "t.y", "time_start": 1_800_000_000.5}])
    assert row.time_started == "2027-01-15T08:00:00.500000+00:00"
    assert iso_time(12.5) is None  # a monotonic clock value is not a time of day


def test_event_filter_types_task_worker_and_names():
    f = EventFilter(types=("task-*",), tasks=("billing.*",), worker="w1@*")
    received = {"type": "task-received", "uuid": "u1", "name": "billing.charge", "hostname": "w1@a"}
    done = {"type": "task-succeeded", "uuid": "u1", "hostname": "w1@a"}
    for e in (received, done):
        f.remember(e)
    assert done["name"] == "billing.charge"  # filled in from task-received
    assert f.matches(received) and f.matches(done)
    assert not f.matches({**done, "hostname": "w2@a"})
    assert not f.matches({**done, "name": "mail.send"})
    assert not f.matches({"type": "worker-online", "hostname": "w1@a"})
    plain = EventFilter()
    assert not plain.matches({"type": "worker-heartbeat", "hostname": "w"})  # only when asked
    assert plain.matches({"type": "worker-online", "hostname": "w"})
    assert EventFilter(types=("worker-heartbeat",)).matches({"type": "worker-heartbeat"})
    either = EventFilter(tasks=("billing.*", "mail.*"))  # --task repeated: any of them
    assert either.matches({**done, "name": "mail.send"}) and either.matches(done)
    assert not either.matches({**done, "name": "reports.daily"})


def test_top_rates_history_failures():
    clock = [100.0]
    depth = {"celery": 10}
    state = TopState("redis://x", lambda: [QueueInfo(name, n) for name, n in depth.items()],
                     now=lambda: clock[0])
    state.sample_queues()
    clock[0], depth["celery"] = 102.0, 16
    state.sample_queues()
    w = WorkerInfo(name="w@h", status="online", processed=100, queues=["celery"])
    state.set_workers([w])
    clock[0] = 104.0
    state.set_workers([WorkerInfo(name="w@h", status="online", processed=110, queues=["celery"])])
    snap = state.snapshot()
    assert snap.queues[0].change_per_s == 3.0 and snap.queues[0].history == [10, 16]
    assert (snap.workers[0].tasks_per_s, snap.workers[0].rate_from) == (5.0, "stats")
    state.add_events([{"type": "task-received", "uuid": "t1", "name": "x.y", "hostname": "w@h"},
                      {"type": "task-failed", "uuid": "t1", "hostname": "w@h", "timestamp": 1_800_000_000,
                       "exception": "ValueError('bad')"}]
                     + [{"type": "task-succeeded", "uuid": f"s{i}", "hostname": "w@h"} for i in range(19)])
    snap = state.snapshot()
    assert (snap.workers[0].tasks_per_s, snap.workers[0].rate_from) == (2.0, "events")  # 20 in 10 s
    assert [(f.task, f.id, f.exception) for f in snap.failures] == [("x.y", "t1", "ValueError('bad')")]
    assert snap.to_json()["queues"][0]["name"] == "celery"


def test_sparkline():
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([0, 4, 8]) == "▁▅█"
    assert len(sparkline(list(range(100)), width=40)) == 40


def test_event_lines_for_a_terminal():
    from celerytool.render.live import event_line

    line = event_line({"type": "task-failed", "uuid": "u1", "name": "t.x", "hostname": "w@h",
                       "timestamp": 1_800_000_000.25, "exception": "ValueError('bad')"})
    assert "task-failed" in line and "u1 t.x ValueError('bad') [w@h]" in line
    line = event_line({"type": "task-succeeded", "uuid": "u2", "hostname": "w@h", "runtime": 0.5})
    assert line.startswith("--") and "in 0.500s" in line
    assert event_line({"type": "worker-online", "hostname": "w@h", "timestamp": 1}).endswith("worker-online   w@h")


def test_top_once_fits_70_columns_without_trailing_spaces():
    """At 70 columns every line of `top --once` fits, none ends in spaces, nothing wraps."""
    import io
    import os

    from celerytool.render.live import write_live

    state = TopState("redis://:secret@a-rather-long-host-name.example.internal:6379/15",
                     lambda: [QueueInfo("celery.a.very.long.queue.name.for.billing", 12345)], now=lambda: 100.0)
    state.sample_queues()
    state.set_workers([WorkerInfo(name="celery@worker-with-a-long-host-name.example.internal",
                                  status="online", processed=3, queues=["celery"])])
    state.add_events([{"type": "task-failed", "uuid": "0123456789abcdef0123456789abcdef0123",
                       "name": "billing.tasks.charge_the_customer_again", "hostname": "w@h",
                       "timestamp": 1_800_000_000, "exception": "TimeoutError('x' * 300)"}])
    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "70"
    try:
        write_live([state.snapshot()], "top", out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = old
    lines = out.getvalue().splitlines()
    assert lines and all(len(line) <= 70 for line in lines), [line for line in lines if len(line) > 70]
    assert not any(line.endswith(" ") for line in lines)
    failure = [line for line in lines if "01234567" in line]
    assert len(failure) == 1 and "0123456789abcdef" not in failure[0]  # one line, the id shortened
    assert "billing.tasks" in failure[0]  # the task name kept before the id's tail
    assert sum("latest failures" in line for line in lines) == 1
