"""Broken stored results and refused commands (issue 16, item 5): a stored non-string task name
with --task; a Redis ACL refusal (NOPERM) said as such; fields of any type and kombu-tagged
values kombu cannot read (found by a hostile-input campaign: each once ended in exit 70)."""

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


# --- results: kombu-tagged values that kombu cannot read; fields of any type ---------------

@pytest.fixture
def odd_results(redis_url, redis_client):
    """Two results Celery stored, and copies of them with a field of another type."""
    from celery.app.task import Context

    app = make_app(redis_url, result_extended=True)
    app.backend.store_result("ok", 1, "SUCCESS", request=Context(id="ok", task="tasks.ok"))
    app.backend.store_result("failed", ValueError("boom 17"), "FAILURE",
                             request=Context(id="failed", task="tasks.fail"))
    app.close()
    meta = json.loads(redis_client.get("celery-task-meta-failed"))
    odd = {
        "tag-date": {"date_done": {"__type__": "datetime", "__value__": 5}},
        "tag-bytes": {"result": {"__type__": "bytes", "__value__": 5}},
        "tag-decimal": {"result": {"__type__": "decimal", "__value__": "x"}},
        "name-dict": {"name": {"a": 1}, "worker": ["w"], "queue": 5},
        "name-int": {"name": 5},
        "status-list": {"status": ["FAILURE"]},
        "date-int": {"date_done": 5},
    }
    for task_id, change in odd.items():
        redis_client.set(f"celery-task-meta-{task_id}", json.dumps({**meta, "task_id": task_id, **change}))
    return odd


def test_results_and_result_read_bad_tagged_values_as_errors(run, redis_url, odd_results):
    for fmt in ("table", "json"):
        r = run("results", "-b", redis_url, "-o", fmt, "-n", "100")
        assert r.exit_code == 0, r
    listed = {x["id"]: x for x in r.json()}
    assert set(listed) == {"ok", "failed", *odd_results}
    for task_id in ("tag-date", "tag-bytes", "tag-decimal"):
        assert "bad kombu-tagged value" in listed[task_id]["error"]
    r = run("result", "tag-bytes", "-b", redis_url, "-o", "json")
    assert r.exit_code == 65, r  # bad data
    assert "bad kombu-tagged value" in r.json()[0]["error"]


@pytest.mark.parametrize("by", ["exception", "task", "worker,queue", "exception,task"])
def test_failures_group_names_of_any_type(run, redis_url, odd_results, by):
    for fmt in ("table", "json"):
        r = run("failures", "--by", by, "-b", redis_url, "-o", fmt, "--ids")
        assert r.exit_code == 1, r  # failures found
    groups = r.json()
    ids = [i for g in groups for i in g["ids"]]
    assert sorted(ids) == sorted(set(ids))  # each failure once
    assert {"failed", "name-dict", "name-int", "date-int"} <= set(ids)
    if by == "task":
        assert {g["task"] for g in groups} >= {"tasks.fail", '{"a":1}', "5"}


@pytest.mark.parametrize("command", [("forget",), ("expire", "--ttl", "1d")])
def test_forget_and_expire_select_over_fields_of_any_type(run, redis_url, redis_client, odd_results, command):
    before = {k: redis_client.dump(k) for k in redis_client.keys("*")}
    for selection in (("--task", "tasks.*"), ("--status", "FAILURE"), ("--older-than", "1s")):
        r = run(*command, *selection, "--dry-run", "-b", redis_url, "-o", "json")
        assert r.exit_code == 0, r
    r = run(*command, "--task", "tasks.fail", "--status", "FAILURE", "--dry-run", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    # "failed" and the copies that kept a text name and status ("name-*" and "status-list" do not)
    assert r.json()["matched"] == 1 + 4
    assert {k: redis_client.dump(k) for k in redis_client.keys("*")} == before


@pytest.mark.parametrize("command", [("forget",), ("expire", "--ttl", "1d")])
def test_forget_and_expire_count_a_deeply_nested_result_as_undecodable(run, redis_url, redis_client,
                                                                       odd_results, command):
    deep = b'{"status": "FAILURE", "result": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    redis_client.set("celery-task-meta-deep", deep)
    r = run(*command, "--task", "tasks.*", "--dry-run", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["undecodable"] >= 1
    assert redis_client.get("celery-task-meta-deep") == deep
