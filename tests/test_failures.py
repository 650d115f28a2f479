"""failures / retry on the Redis result backend, with real workers (result_extended on and off)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import redis

from conftest import make_app
from services import wait_for
from workers import launch_worker

# what the tests ask the worker to fail with: kind -> the n values sent
ASKED = {"value": [1, 2, 3, 4, 5], "timeout": [1, 2, 3], "key": [7, 8]}
TIMEOUT_TEMPLATE = "Timeout connecting to 10.0.0.# after # s (request #)"


@pytest.fixture(scope="module")
def env(redis_server, tmp_path_factory):
    """Two workers on one Redis database: queue ext (result_extended) and plain (without)."""
    url = redis_server.url(12)
    redis.Redis(port=redis_server.port, db=12).flushdb()
    tmp = tmp_path_factory.mktemp("failures")
    workers = [launch_worker(url, tmp / "ext", "ext"),
               launch_worker(url, tmp / "plain", "plain", {"CT_RESULT_EXTENDED": "0"})]
    try:
        for w in workers:
            w.wait_ready()
        app = make_app(url)
        yield {"url": url, "app": app, "fixed": str(tmp / "fixed"), "client": redis.Redis.from_url(url)}
        app.close()
    finally:
        for w in workers:
            w.stop()


def _send_failures(env, queue):
    """Send ASKED (all fail), plus two successes; wait until every one is done. -> {kind: [ids]}."""
    app = env["app"]
    sent = {kind: [app.send_task("worker_tasks.flaky", (kind, n), {"fixed": env["fixed"]}, queue=queue).id
                   for n in ns] for kind, ns in ASKED.items()}
    ok = [app.send_task("worker_tasks.add", (1, 2), queue=queue).id for _ in range(2)]
    every = [i for ids in sent.values() for i in ids] + ok
    wait_for(lambda: all(env["client"].exists(f"celery-task-meta-{i}") for i in every), 60)
    return sent


@pytest.fixture
def failed(env):
    """A clean database holding ASKED's failures from the extended worker."""
    env["client"].flushdb()
    return _send_failures(env, "ext")


def test_failures_grouped_by_exception(run, env, failed):
    r = run("failures", "-b", env["url"], "-o", "json")
    assert r.exit_code == 1, r  # there are failures: a monitoring check fails
    groups = {g["exception"]: g for g in r.json()}
    assert {k: g["count"] for k, g in groups.items()} == {"ValueError": 5, "TimeoutError": 3, "KeyError": 2}
    assert [g["exception"] for g in r.json()] == ["ValueError", "TimeoutError", "KeyError"]  # by count
    assert groups["ValueError"]["message"] == "bad value #"
    assert groups["TimeoutError"]["message"] == TIMEOUT_TEMPLATE
    assert groups["KeyError"]["message"] == "key"
    assert groups["ValueError"]["tasks"] == ["worker_tasks.flaky"]
    assert groups["ValueError"]["example_id"] in failed["value"]
    assert groups["ValueError"]["last_traceback"].startswith("ValueError: bad value")
    assert groups["ValueError"]["first"] <= groups["ValueError"]["last"]
    assert "ids" not in groups["ValueError"]
    r = run("failures", "-b", env["url"], "-o", "json", "--ids")
    assert sorted(next(g for g in r.json() if g["exception"] == "KeyError")["ids"]) == sorted(failed["key"])
    table = run("failures", "-b", env["url"], "--full-ids")
    assert table.exit_code == 1
    assert "ValueError" in table.stdout and TIMEOUT_TEMPLATE in table.stdout
    assert "10 failures in 3 groups" in table.stderr


def test_failures_by_task_and_filters(run, env, failed):
    r = run("failures", "-b", env["url"], "--by", "task", "-o", "json")
    assert [(g["task"], g["count"]) for g in r.json()] == [("worker_tasks.flaky", 10)]
    r = run("failures", "-b", env["url"], "--by", "task,exception", "-o", "ndjson")
    assert sorted((g["task"], g["exception"], g["count"]) for g in r.ndjson()) == [
        ("worker_tasks.flaky", "KeyError", 2), ("worker_tasks.flaky", "TimeoutError", 3),
        ("worker_tasks.flaky", "ValueError", 5)]
    r = run("failures", "-b", env["url"], "--by", "worker,queue", "-o", "json")
    (group,) = r.json()
    assert group["queue"] == "ext" and group["worker"].startswith("ct-") and group["count"] == 10
    r = run("failures", "-b", env["url"], "--task", "worker_tasks.add")
    assert r.exit_code == 0 and r.stdout == "" and "no failures" in r.stderr
    # two ValueErrors done two hours ago: --since 1h leaves them out
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    for task_id in failed["value"][:2]:
        key = f"celery-task-meta-{task_id}"
        meta = json.loads(env["client"].get(key))
        meta["date_done"] = old.isoformat()
        env["client"].set(key, json.dumps(meta))
    r = run("failures", "-b", env["url"], "--since", "1h", "-o", "json")
    assert {g["exception"]: g["count"] for g in r.json()} == {"ValueError": 3, "TimeoutError": 3, "KeyError": 2}
    r = run("failures", "-b", env["url"], "--since", "90m", "-n", "1", "-o", "json")
    (top,) = r.json()  # the most frequent (a tie of 3: either)
    assert top["count"] == 3 and top["exception"] in ("ValueError", "TimeoutError")


def test_no_failures_exit_0(run, env):
    env["client"].flushdb()
    r = run("failures", "-b", env["url"])
    assert r.exit_code == 0 and "no failures" in r.stderr
    r = run("failures", "-b", env["url"], "-o", "json")
    assert r.exit_code == 0 and r.json() == []


def test_bad_by_is_a_usage_error(run, env):
    r = run("failures", "-b", env["url"], "--by", "colour")
    assert r.exit_code == 2 and "exception, task, worker, queue" in r.stderr


def test_retry_by_exception_runs_them_once_fixed(run, env, failed, tmp_path):
    client = env["client"]
    dry = run("retry", "--exception", "ValueError", "-b", env["url"], "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry
    assert sorted(p["id"] for p in dry.json()) == sorted(failed["value"])
    assert client.llen("ext") == 0 and all(p["new_id"] is None for p in dry.json())  # nothing sent
    # without --yes and without a terminal: refused, nothing sent
    refused = run("retry", "--exception", "ValueError", "-b", env["url"])
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    open(env["fixed"], "w").close()  # the bug is fixed: the task now succeeds
    try:
        r = run("retry", "--exception", "ValueError", "-b", env["url"], "--yes", "-o", "json")
        assert r.exit_code == 0, r
        rows = r.json()
        assert sorted(row["id"] for row in rows) == sorted(failed["value"])
        assert all(row["new_id"] and row["new_id"] != row["id"] for row in rows)
        app = env["app"]
        for row in rows:
            assert app.AsyncResult(row["new_id"]).get(timeout=30) == {"fixed": "value", "n": row["args"][1]}
            new = json.loads(client.get(f"celery-task-meta-{row['new_id']}"))
            assert new["parent_id"] == row["id"]  # Celery stored the link to the retried id
            assert new["args"] == row["args"] == ["value", row["args"][1]]
            assert client.exists(f"celery-task-meta-{row['id']}")  # the old result stays
    finally:
        import os

        os.unlink(env["fixed"])
    assert {g["exception"] for g in run("failures", "-b", env["url"], "-o", "json").json()} == {
        "ValueError", "TimeoutError", "KeyError"}  # the old failures are still stored


def test_retry_message_names_the_old_id_and_queue_override(run, env, failed):
    old = failed["key"][0]
    r = run("retry", old, old, "--queue", "holding", "-b", env["url"], "--yes", "-o", "json")
    assert r.exit_code == 0, r
    (row,) = r.json()  # an id given twice is sent once
    assert row["queue"] == "holding"
    (message,) = run("peek", "holding", "-b", env["url"], "-o", "json").json()
    assert message["id"] == row["new_id"] and message["task"] == "worker_tasks.flaky"
    assert message["args"] == ["key", 7] and message["kwargs"] == {"fixed": env["fixed"]}
    assert message["headers"]["retry_of"] == old and message["headers"]["parent_id"] == old


def test_retry_same_id_and_forget(run, env, failed):
    client = env["client"]
    ids = failed["timeout"]
    r = run("retry", "--from", "-", "--same-id", "--queue", "holding2", "-b", env["url"], "--yes", "-o", "json",
            input="\n".join(ids) + "\n")
    assert r.exit_code == 0, r
    assert sorted(row["new_id"] for row in r.json()) == sorted(ids)
    assert sorted(m["id"] for m in run("peek", "holding2", "-b", env["url"], "-o", "json").json()) == sorted(ids)
    r = run("retry", *failed["value"][:2], "--queue", "holding3", "--forget", "-b", env["url"], "--yes")
    assert r.exit_code == 0, r
    assert client.llen("holding3") == 2
    assert not any(client.exists(f"celery-task-meta-{i}") for i in failed["value"][:2])
    assert all(client.exists(f"celery-task-meta-{i}") for i in failed["value"][2:])
    assert run("retry", ids[0], "--same-id", "--forget", "-b", env["url"], "--yes").exit_code == 2


def test_retry_without_result_extended_says_why(run, env):
    env["client"].flushdb()
    sent = _send_failures(env, "plain")
    r = run("retry", *sent["value"], "-b", env["url"], "--yes", "-o", "json")
    assert r.exit_code == 1, r  # none could be retried
    assert r.stdout == ""
    for task_id in sent["value"]:
        assert f"cannot retry {task_id}: no task name stored" in r.stderr
    assert "result_extended" in r.stderr
    assert env["client"].llen("plain") == 0 and env["client"].llen("celery") == 0
    # an unknown id and a success are skipped with their reason
    ok = env["app"].send_task("worker_tasks.add", (1, 1), queue="ext")
    ok.get(timeout=30)
    missing = str(uuid.uuid4())
    r = run("retry", ok.id, missing, "-b", env["url"], "--yes")
    assert r.exit_code == 1
    assert f"cannot retry {ok.id}: not a FAILURE result: status SUCCESS" in r.stderr
    assert f"cannot retry {missing}: not a FAILURE result: unknown id (PENDING)" in r.stderr


def test_retry_yes_streams_every_failure_once(run, redis_server):
    """--yes sends while a second process reads (more results than one of its batches):
    every stored failure exactly once, with its own args; --limit stops at N."""
    from celery import states
    from celery.app.task import Context

    url = redis_server.url(13)
    client = redis.Redis(port=redis_server.port, db=13)
    client.flushdb()
    app = make_app(url, result_extended=True)
    stored = {}
    for i in range(3000):
        tid = str(uuid.uuid4())
        request = Context(id=tid, task="worker_tasks.flaky", args=["value", i], kwargs={"fixed": "/nope"},
                          delivery_info={"routing_key": "ext"}, hostname="celery@test", retries=0)
        app.backend.store_result(tid, ValueError(f"bad value {i}"), states.FAILURE, request=request)
        stored[tid] = i
    app.backend.store_result(str(uuid.uuid4()), 5, states.SUCCESS)
    app.close()
    r = run("retry", "--queue", "streamed", "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    rows = r.json()
    assert sorted(row["id"] for row in rows) == sorted(stored)
    assert len({row["new_id"] for row in rows}) == 3000 and not set(stored) & {row["new_id"] for row in rows}
    assert client.llen("streamed") == 3000
    peeked = run("peek", "streamed", "-n", "3000", "-b", url, "-o", "json").json()
    by_new = {row["new_id"]: row["id"] for row in rows}
    assert all(m["args"] == ["value", stored[by_new[m["id"]]]] and m["headers"]["retry_of"] == by_new[m["id"]]
               for m in peeked)
    r = run("retry", "--queue", "limited", "--limit", "1000", "-b", url, "--yes")
    assert r.exit_code == 0, r
    assert client.llen("limited") == 1000 and len(r.stdout.split("\n")) == 1001  # "OLD NEW" lines
