"""The Redis ACL table of docs/connection.md is true: commands run as a user allowed exactly
the Redis commands of their row (and fail when one is missing)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "connection.md"


def acl_rows() -> dict[str, list[str]]:
    text = DOC.read_text(encoding="utf-8").split("### Redis ACL", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = re.findall(r"`([^`]+)`", m.group(2))
    return rows


def reader_line() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.search(r"^ACL SETUSER (.*)$", text, re.M).group(1).split()


@pytest.fixture
def acl_user(redis_server, redis_client):
    made = []

    def make(commands: list[str]) -> str:
        name = f"ct-{uuid.uuid4().hex[:8]}"
        rules = [f"+{c.lower().replace(' ', '|')}" for c in commands]
        redis_client.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", "~*", "&*",
                                     "+@connection", *rules)
        made.append(name)
        return f"redis://{name}:pw@127.0.0.1:{redis_server.port}/0"

    yield make
    for name in made:
        redis_client.execute_command("ACL", "DELUSER", name)


ROWS = acl_rows()


def test_the_table_has_the_everyday_commands():
    for name in ("queues", "peek", "send", "result", "results", "purge --task (selected)", "forget",
                 "unacked", "requeue", "doctor", "workers, inspect", "events"):
        assert name in ROWS, name


@pytest.mark.parametrize(("row", "args"), [
    ("queues", ["queues"]),
    ("bindings", ["bindings"]),
    ("peek", ["peek", "celery"]),
    ("summary", ["summary", "celery"]),
    ("send", ["send", "tasks.add", "1", "2"]),
    ("results", ["results"]),
    ("purge --task (selected)", ["purge", "celery", "--task", "tasks.add", "-y"]),
    ("move", ["move", "celery", "other", "-y"]),
    ("unacked", ["unacked"]),
])
def test_a_command_runs_with_exactly_the_commands_of_its_row(run, acl_user, celery_app, redis_client, row, args):
    for i in range(3):
        celery_app.send_task("tasks.add", args=(i, i))
    url = acl_user(ROWS[row])
    r = run(*args, "-b", url, "-o", "json")
    assert r.exit_code == 0, r
    if row.startswith("purge"):
        assert r.json()["removed"] == 3 and redis_client.llen("celery") == 0


def test_result_and_forget_with_their_rows(run, acl_user, celery_app):
    tid = celery_app.send_task("tasks.add").id
    celery_app.backend.store_result(tid, 4, "SUCCESS")
    r = run("result", tid, "-b", acl_user(ROWS["result"]), "-o", "json")
    assert r.exit_code == 0 and r.json()[0]["result"] == 4, r
    r = run("forget", tid, "-y", "-b", acl_user(ROWS["forget"]), "-o", "json")
    assert r.exit_code == 0 and r.json()["deleted"] == 1, r


def test_a_missing_command_is_refused_in_one_line(run, acl_user, celery_app):
    celery_app.send_task("tasks.add")
    url = acl_user([c for c in ROWS["peek"] if c != "LRANGE"])
    r = run("peek", "celery", "-b", url)
    assert r.exit_code == 69 and "Traceback" not in r.stderr, r
    assert "pw" not in r.stderr


def test_the_read_only_user_of_the_manual(run, redis_server, redis_client, celery_app):
    words = reader_line()
    name = f"ct-reader-{uuid.uuid4().hex[:6]}"
    redis_client.execute_command("ACL", "SETUSER", name, "reset", *words[1:])
    try:
        celery_app.send_task("tasks.add")
        url = f"redis://{name}:secret@127.0.0.1:{redis_server.port}/0"
        for args in (["queues"], ["bindings"], ["peek", "celery"], ["summary", "celery"], ["unacked"],
                     ["results"]):
            r = run(*args, "-b", url, "-o", "json")
            assert r.exit_code == 0, (args, r)
        r = run("purge", "celery", "-y", "-b", url)
        assert r.exit_code == 69 and redis_client.llen("celery") == 1, r
    finally:
        redis_client.execute_command("ACL", "DELUSER", name)


def test_doctor_as_a_read_only_user_falls_back_to_plain_reads(run, redis_server, redis_client, celery_app):
    """A ``+@read`` user may not load scripts: doctor reads the same facts with plain read
    commands (issue 16: it exited 69 on SCRIPT LOAD)."""
    for i in range(3):
        celery_app.send_task("tasks.add", args=(i, i))
    # a result as Celery writes it with result_expires=None: no TTL, a finding
    redis_client.set("celery-task-meta-ro-1", b'{"status": "SUCCESS", "result": 4, "traceback": null, '
                     b'"children": [], "date_done": "2026-01-02T03:04:05.000006", "task_id": "ro-1"}')
    name = f"ct-read-{uuid.uuid4().hex[:6]}"
    redis_client.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw", "~*", "&*",
                                 "+@connection", "+@read")
    try:
        url = f"redis://{name}:pw@127.0.0.1:{redis_server.port}/0"
        full = run("doctor", "-b", f"redis://127.0.0.1:{redis_server.port}/0", "-o", "json")
        ro = run("doctor", "-b", url, "-o", "json")
        assert ro.exit_code == full.exit_code == 1, ro  # findings on both
        assert "plain commands" in ro.stderr and "pw" not in ro.stderr
        assert ro.json()["classes"] == full.json()["classes"]
        results = [c for c in ro.json()["classes"] if c["class"] == "task_result"]
        assert results[0]["oldest_date_done"] == "2026-01-02T03:04:05.000006"
        assert [f["finding"] for f in ro.json()["findings"]] == [f["finding"] for f in full.json()["findings"]]
    finally:
        redis_client.execute_command("ACL", "DELUSER", name)
