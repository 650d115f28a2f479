"""Tables fit the terminal: every row of peek, results and unacked is one line at 80, 120 and 200 columns."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest

from celerytool.model import Message
from celerytool.render import layout, table

WIDTHS = [80, 120, 200]
LONG_TASK = "myproject.billing.tasks.reconcile_invoices_for_customer_account"


def check_lines(text, width, rows):
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == rows + 1, text  # header + one line per row
    for line in lines[:-1]:
        assert layout.cell_len(line) <= width, (width, line)
        assert line == line.rstrip(" "), f"trailing spaces: {line!r}"
    return lines[:-1]


def send_long(app, n=5):
    ids = []
    for i in range(n):
        r = app.send_task(LONG_TASK, args=[i, "x" * 70, {"nested": list(range(20))}],
                          kwargs={"customer": "ü" * 40, "dry_run": False}, priority=i % 10,
                          eta=dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
                          expires=dt.datetime(2031, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc))
        ids.append(r.id)
    return ids


@pytest.mark.parametrize("width", WIDTHS)
def test_peek_rows_fit_the_terminal(run, redis_url, celery_app, width):
    ids = send_long(celery_app)
    r = run("peek", "celery", "-b", redis_url, env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r
    lines = check_lines(r.stdout, width, len(ids))
    assert {"id", "task"} <= set(lines[0].split())
    body = "\n".join(lines[1:])
    for tid in ids:  # short ids, as git shows hashes
        assert tid[:8] in body and tid not in body
    assert "…" in body  # something long was cut, not wrapped
    if width == 200:
        assert "2031-01-02T03:04:05Z" in body and LONG_TASK in body


@pytest.mark.parametrize("width", [80, 120])
def test_full_ids_still_fit(run, redis_url, celery_app, width):
    ids = send_long(celery_app, 3)
    r = run("peek", "celery", "--full-ids", "-b", redis_url, env={"COLUMNS": str(width)})
    lines = check_lines(r.stdout, width, 3)
    for tid in ids:
        assert tid in "\n".join(lines)


def test_short_ids_grow_until_unique():
    assert layout.short_ids(["abcdef0123-1", "abcdef0123-2", "zz"]) == 12
    assert layout.short_ids(["abcdef01", "12345678"]) == 8
    rows = [Message(id=f"deadbeef-{i:04d}", task="t", position=i) for i in range(3)]
    text = table.chunk_text(rows, table.KINDS["message"], 80)
    assert "deadbeef-0001" in text and "deadbeef-0001-" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_results_rows_fit_and_one_match_stays_a_list(run, redis_server, width):
    from celery.app.task import Context

    from conftest import clean_db_url, make_app

    url = clean_db_url(redis_server, 4)
    app = make_app(url, result_extended=True)
    tids = [str(uuid.uuid4()) for _ in range(3)]
    for i, tid in enumerate(tids):
        req = Context(id=tid, task=LONG_TASK, args=[i, "y" * 80], kwargs={}, hostname="worker-" + "w" * 40,
                      retries=0, delivery_info={"routing_key": "celery"})
        app.backend.mark_as_failure(tid, ValueError("disk full " * 20), request=req)
    app.close()
    r = run("results", "-b", url, env={"COLUMNS": str(width)})
    assert r.exit_code == 0, r
    lines = check_lines(r.stdout, width, 3)
    assert lines[0].split()[:2] == ["id", "status"]
    r = run("results", "-n", "1", "-b", url, env={"COLUMNS": str(width)})
    lines = check_lines(r.stdout, width, 1)  # the list view, not the single-record view
    assert lines[0].split()[:2] == ["id", "status"] and "FAILURE" in lines[1]


@pytest.mark.parametrize("width", WIDTHS)
def test_unacked_rows_fit_the_terminal(run, redis_url, celery_app, width):
    ids = send_long(celery_app, 4)
    with celery_app.connection_for_read() as conn:
        q = conn.SimpleQueue("celery", no_ack=False)
        held = [q.get(timeout=5) for _ in ids]  # delivered, never acked: kombu's unacked hash
        r = run("unacked", "-b", redis_url, env={"COLUMNS": str(width)})
        assert r.exit_code == 0, r
        lines = check_lines(r.stdout, width, len(ids))
        body = "\n".join(lines)
        assert all(tid[:8] in body for tid in ids)
        for m in held:
            m.ack()
        q.close()


def test_chunks_repeat_the_header_and_stay_within_the_width(monkeypatch):
    monkeypatch.setattr(table, "CHUNK", 10)
    rows = [Message(id=str(uuid.uuid4()), task=LONG_TASK, args=["z" * i], position=i) for i in range(25)]
    out = io.StringIO()
    assert table.write_table(iter(rows), "message", out, width=80) == 25
    lines = out.getvalue().splitlines()
    assert len(lines) == 25 + 3 and sum(line.split()[0] == "#" for line in lines) == 3
    assert all(layout.cell_len(line) <= 80 and not line.endswith(" ") for line in lines)


def test_wide_characters_are_measured_in_cells():
    assert layout.cell_len("日本") == 4 and layout.cut("日本語です", 5) == "日本…"
    rows = [Message(id="a", task="日本語のタスク名" * 5, position=0)]
    text = table.chunk_text(rows, table.KINDS["message"], 40)
    assert all(layout.cell_len(line) <= 40 for line in text.splitlines())
