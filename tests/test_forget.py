"""celerytool forget / expire on Redis: exactly the selected results change, nothing else."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import make_app

OLD = 2 * 3600


def store(app, task_id, state, result, *, age=0.0, name=None):
    """What Celery's backend stores for a task, with date_done ``age`` seconds ago."""
    backend = app.backend
    meta = backend._get_result_meta(result=result, state=state, traceback=None, request=None)
    meta["date_done"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age)).isoformat()
    if name:
        meta["name"] = name
    meta["task_id"] = task_id
    key = backend.get_key_for_task(task_id)
    backend.set(key, backend.encode(meta))
    return key if isinstance(key, bytes) else key.encode()


class _Group:
    """A GroupResult's tuple form without AsyncResults (they talk to Redis when collected)."""

    def as_tuple(self):
        return (("grp-1", None), [(("so-0", None), None)])


@pytest.fixture
def filled(redis_url, redis_client):
    """Results of known state, task and age; some with a TTL (result_expires) and some without."""
    with_ttl = make_app(redis_url)
    no_ttl = make_app(redis_url, result_expires=None)
    pickled = make_app(redis_url, result_expires=None, result_serializer="pickle")
    keys = {
        "success_old": [store(no_ttl, f"so-{i}", "SUCCESS", i, age=OLD, name="tasks.a") for i in range(5)],
        "success_old_pickle": [store(pickled, f"sp-{i}", "SUCCESS", i, age=OLD, name="tasks.a") for i in range(2)],
        "success_new": [store(with_ttl, f"sn-{i}", "SUCCESS", i, name="tasks.a") for i in range(3)],
        "failure_old": [store(with_ttl, f"fo-{i}", "FAILURE", {"exc_type": "ValueError", "exc_message": ["x"],
                                                               "exc_module": "builtins"}, age=OLD, name="tasks.b")
                        for i in range(4)],
    }
    with_ttl.backend.save_group("grp-1", _Group())  # what GroupResult("grp-1", [...]).save() stores
    redis_client.set("unrelated", "keep me")
    redis_client.rpush("celery", "a queue item")
    yield keys
    for app in (with_ttl, no_ttl, pickled):
        app.close()


def _all_keys(client):
    return set(client.scan_iter(count=1000))


def test_forget_success_older_than_deletes_exactly_those(run, redis_url, redis_client, filled):
    before = _all_keys(redis_client)
    expected = set(filled["success_old"]) | set(filled["success_old_pickle"])
    r = run("forget", "--status", "SUCCESS", "--older-than", "1h", "--dry-run", "-o", "json", "-b", redis_url)
    assert r.exit_code == 0, r
    assert r.json()["matched"] == len(expected) == 7 and r.json()["deleted"] == 0
    assert _all_keys(redis_client) == before
    r = run("forget", "--status", "SUCCESS", "--older-than", "1h", "-b", redis_url)
    assert r.exit_code == 2  # not on a terminal: --yes
    r = run("forget", "--status", "SUCCESS", "--older-than", "1h", "--yes", "-o", "json", "-b", redis_url)
    assert r.exit_code == 0, r
    out = r.json()
    assert out["deleted"] == 7 and out["examined"] == 14 and out["dry_run"] is False
    assert before - _all_keys(redis_client) == expected
    assert _all_keys(redis_client) <= before


def test_forget_by_task_ids_and_from_stdin(run, redis_url, redis_client, filled):
    before = _all_keys(redis_client)
    r = run("forget", "--task", "tasks.b", "--yes", "-o", "json", "-b", redis_url)
    assert r.json()["deleted"] == 4, r
    assert before - _all_keys(redis_client) == set(filled["failure_old"])
    r = run("forget", "sn-0", "missing-id", "--yes", "-o", "json", "-b", redis_url)
    assert r.json()["deleted"] == 1
    r = run("forget", "--from", "-", "--yes", "-o", "json", "-b", redis_url, input="sn-1\n\nsn-2\ngrp-1\n")
    assert r.json()["deleted"] == 3
    assert not redis_client.exists("celery-taskset-meta-grp-1")
    assert redis_client.exists("unrelated", "celery") == 2


@pytest.mark.parametrize("command", [["forget"], ["expire", "--ttl", "1h"]])
def test_an_empty_from_acts_on_nothing_and_exits_0(run, redis_url, redis_client, filled, command):
    """The recipe's `... | celerytool forget --from - -y` when nothing was retried: nothing to do
    (exit 0), and the other filters never widen to every result."""
    before = {k: redis_client.ttl(k) for k in _all_keys(redis_client)}
    r = run(*command, "--from", "-", "--status", "SUCCESS", "--all", "--yes", "-b", redis_url, input="\n# none\n")
    assert r.exit_code == 0 and r.stdout == "", r
    assert "no task id in stdin" in r.stderr
    assert {k: redis_client.ttl(k) for k in _all_keys(redis_client)} == before


def test_forget_needs_a_selection(run, redis_url, filled):
    r = run("forget", "--yes", "-b", redis_url)
    assert r.exit_code == 2 and "--all" in r.stderr
    r = run("forget", "--all", "--dry-run", "-o", "json", "-b", redis_url)
    assert r.json()["matched"] == 15  # 14 task results and the group


def test_expire_only_without_ttl(run, redis_url, redis_client, filled):
    had_ttl = {k for k in _all_keys(redis_client) if redis_client.ttl(k) > 0}
    without = set(filled["success_old"]) | set(filled["success_old_pickle"])
    r = run("expire", "--ttl", "1h", "--only-without-ttl", "--all", "--dry-run", "-o", "json", "-b", redis_url)
    assert r.json()["would_set"] == len(without), r
    assert all(redis_client.ttl(k) == -1 for k in without)
    r = run("expire", "--ttl", "1h", "--only-without-ttl", "--all", "--yes", "-o", "json", "-b", redis_url)
    assert r.exit_code == 0, r
    assert r.json()["expiry_set"] == len(without)
    assert all(3500 < redis_client.ttl(k) <= 3600 for k in without)
    assert all(redis_client.ttl(k) > 80000 for k in had_ttl)  # result_expires (1 day) left alone
    assert redis_client.ttl("unrelated") == -1 and redis_client.ttl("celery") == -1


def test_expire_by_status_sets_ttl_only_there(run, redis_url, redis_client, filled):
    r = run("expire", "--ttl", "10m", "--status", "FAILURE", "-y", "-o", "json", "-b", redis_url)
    assert r.json()["expiry_set"] == 4, r
    for k in _all_keys(redis_client):
        ttl = redis_client.ttl(k)
        if k in filled["failure_old"]:
            assert 500 < ttl <= 600
        else:
            assert ttl == -1 or ttl > 80000


def test_forget_rpc_backend_says_why(run):
    r = run("forget", "x", "--yes", "--backend", "rpc://", "-b", "amqp://guest:guest@127.0.0.1:1//")
    assert r.exit_code == 2 and "rpc" in r.stderr
