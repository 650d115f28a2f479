"""Broken stored results and refused commands (issue 16, item 5): a stored non-string task name
with --task; a Redis ACL refusal (NOPERM) said as such."""

from __future__ import annotations

import json

import pytest

from conftest import make_app


@pytest.fixture
def stored(redis_url, redis_client):
    """Two results stored by Celery (result_extended: with their names), and rows whose name
    is not text, written as a broken or hostile producer would."""
    from celery.app.task import Context

    app = make_app(redis_url, result_extended=True)
    for i, name in enumerate(["billing.charge", "mail.send"]):
        app.backend.store_result(f"good-{i}", i, "SUCCESS", request=Context(id=f"good-{i}", task=name))
    for task_id, name in (("bad-int", 5), ("bad-list", ["billing.charge"]), ("bad-obj", {"a": 1})):
        meta = json.loads(redis_client.get("celery-task-meta-good-0"))
        meta.update(task_id=task_id, name=name)
        redis_client.set(f"celery-task-meta-{task_id}", json.dumps(meta))
    yield app
    app.close()


def test_task_glob_over_a_stored_non_string_name(run, redis_url, stored):
    r = run("results", "-b", redis_url, "--task", "billing.*", "-o", "json")
    assert r.exit_code == 0, r
    assert [x["id"] for x in r.json()] == ["good-0"]
    shown = run("results", "-b", redis_url, "-o", "json", "-n", "10")
    assert shown.exit_code == 0, shown
    assert {x["id"] for x in shown.json()} >= {"good-0", "good-1", "bad-int", "bad-list", "bad-obj"}


def test_noperm_says_which_command_the_acl_refused(run, redis_server, redis_client):
    """A +@read user: a write is refused by the ACL, and the error says so (not 'authentication
    failed', which sends people to check a password that is right)."""
    import json as _json

    redis_client.lpush("celery", _json.dumps({"body": "", "headers": {}, "properties": {}}))
    redis_client.execute_command("ACL", "SETUSER", "hostile-ro", "on", ">ro-pw", "~*", "&*", "+@read",
                                 "+@connection")
    try:
        url = f"redis://hostile-ro:ro-pw@127.0.0.1:{redis_server.port}/0"
        assert run("peek", "celery", "-b", url, "-o", "json").exit_code == 0  # reads are allowed
        r = run("purge", "celery", "-b", url, "--yes")
        assert r.exit_code == 69, r
        assert "authentication failed" not in r.stderr
        assert "not allowed" in r.stderr and "NOPERM" in r.stderr
        assert "ro-pw" not in r.stderr
    finally:
        redis_client.execute_command("ACL", "DELUSER", "hostile-ro")


@pytest.mark.parametrize("raw", [b"\x80\x04not a meta", b'{"status": "SUCCESS", "result": ' + b"[" * 5000],
                         ids=["garbage", "cut-json"])
def test_an_undecodable_group_result_is_65_not_success(run, redis_url, redis_client, stored, raw):
    redis_client.set("celery-taskset-meta-grp-bad", raw)
    r = run("result", "grp-bad", "-b", redis_url, "-o", "json")
    assert r.exit_code == 65, r
    assert r.json()[0]["status"] != "SUCCESS"
    both = run("result", "grp-bad", "good-0", "-b", redis_url, "-o", "json")
    assert both.exit_code == 65, both  # the worst decides
