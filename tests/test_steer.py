"""rate-limit, time-limit, pool against two real workers on Redis: prefork with --autoscale, and solo.

The module has a redis-server of its own (other tests flush theirs). Expected values come from
what Celery was asked: the limits the command set, the processes it added.
"""

from __future__ import annotations

import pytest

from services import wait_for
from workers import start_worker, two_workers


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    with two_workers(tmp_path_factory, "steer",
                     dict(queues="q1,q2", pool="prefork", prefix="w1", extra=("--autoscale", "4,2")),
                     dict(queues="q1,q2", pool="solo", prefix="w2")) as two:
        yield two


@pytest.fixture
def keys(two):
    import redis

    client = redis.Redis.from_url(two["url"])
    yield lambda: {k.decode() for k in client.keys("*")}
    client.close()


def assert_clean(before, after):
    added = {k for k in after - before if not k.startswith(("celery-task-meta-", "ct:record", "unacked", "q"))}
    assert not added, f"left behind: {added}"


def _registered(run, url, worker):
    r = run("inspect", "registered", "-b", url, "-d", worker, "-o", "json")
    assert r.exit_code == 0, r
    return {row["task"]: row["info"] for row in r.json()}


def test_rate_limit_unknown_task_exits_1_with_the_workers_error(run, two, keys):
    before = keys()
    r = run("rate-limit", "unknown.task", "1/s", "-b", two["url"], "--yes", "-o", "json")
    assert r.exit_code == 1, r
    rows = {row["worker"]: row for row in r.json()}
    assert set(rows) == {two["a"].name, two["b"].name}
    assert all(row["ok"] is False and row["error"] == "unknown task" for row in rows.values())
    assert "unknown task" in r.stderr
    assert_clean(before, keys())


def test_rate_limit_set_and_lifted_on_one_worker(run, two, keys):
    before = keys()
    r = run("rate-limit", "worker_tasks.add", "1/s", "-b", two["url"], "-d", two["b"].name, "--yes",
            "-o", "json")
    assert r.exit_code == 0, r
    assert [(row["worker"], row["ok"]) for row in r.json()] == [(two["b"].name, True)]
    assert "rate_limit=1/s" in _registered(run, two["url"], two["b"].name)["worker_tasks.add"]
    assert "rate_limit:1/s" not in str(_registered(run, two["url"], two["a"].name)["worker_tasks.add"])
    r = run("rate-limit", "worker_tasks.add", "0", "-b", two["url"], "-d", two["b"].name, "--yes")
    assert r.exit_code == 0, r
    assert "rate_limit=1/s" not in str(_registered(run, two["url"], two["b"].name)["worker_tasks.add"])
    assert_clean(before, keys())


def test_time_limit_shows_in_inspect_registered_on_the_addressed_worker_only(run, two, keys):
    before = keys()
    r = run("time-limit", "worker_tasks.mul", "--soft", "1", "-b", two["url"], "-d", two["a"].name, "--yes")
    assert r.exit_code == 0, r
    assert "soft_time_limit=1.0" in _registered(run, two["url"], two["a"].name)["worker_tasks.mul"]
    assert "soft_time_limit" not in str(_registered(run, two["url"], two["b"].name)["worker_tasks.mul"])
    assert_clean(before, keys())


def _processes(run, url, worker):
    r = run("inspect", "stats", "-b", url, "-d", worker, "-o", "json")
    assert r.exit_code == 0, r
    return len(r.json()[0]["pool"]["processes"])


def test_pool_grow_on_an_autoscaling_worker_is_its_error_and_autoscale_min_adds_two(run, two, keys):
    """Celery 5.7 refuses pool_grow on a worker run with --autoscale (the range is the lever there):
    the command reports that error (exit 1); raising the autoscale minimum from 2 to 4 adds two."""
    before = keys()
    url, name = two["url"], two["a"].name
    assert _processes(run, url, name) == 2  # --autoscale 4,2
    r = run("pool", "grow", "2", "-b", url, "-d", name, "--yes", "-o", "json")
    assert r.exit_code == 1, r
    assert "not supported with autoscale" in r.json()[0]["error"]
    r = run("pool", "autoscale", "6", "4", "-b", url, "-d", name, "--yes")
    assert r.exit_code == 0, r
    wait_for(lambda: _processes(run, url, name) == 4, timeout=15)
    r = run("pool", "autoscale", "4", "2", "-b", url, "-d", name, "--yes")
    assert r.exit_code == 0, r
    assert_clean(before, keys())


def test_dry_run_names_the_workers_and_sends_nothing(run, two):
    r = run("rate-limit", "worker_tasks.add", "1/s", "-b", two["url"], "--dry-run", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted(r.json()["workers"]) == sorted([two["a"].name, two["b"].name])
    assert "rate_limit=1/s" not in str(_registered(run, two["url"], two["a"].name)["worker_tasks.add"])


def test_refuses_without_yes_off_a_terminal(run, two):
    r = run("pool", "shrink", "-b", two["url"])
    assert r.exit_code == 2, r


def test_none_answering_exits_69(run, two):
    r = run("rate-limit", "worker_tasks.add", "1/s", "-b", two["url"], "-d", "nobody@nowhere", "--yes",
            "-t", "0.5", "-o", "json")
    assert r.exit_code == 69, r
    assert r.json() == [{"worker": "nobody@nowhere", "ok": False, "reply": None,
                         "error": "no reply within the timeout"}]


def _queues(run, url):
    r = run("queues", "-b", url, "-o", "json")
    assert r.exit_code == 0, r
    return {q["name"]: q for q in r.json()}


def _workers(run, url):
    r = run("workers", "-b", url, "-o", "json")
    assert r.exit_code == 0, r
    return {w["name"]: w for w in r.json() if w["status"] == "online"}


def test_pause_stops_both_workers_on_q1_only_and_resume_restores_them(run, two, keys):
    import time

    import redis

    url, app = two["url"], two["app"]
    names = sorted([two["a"].name, two["b"].name])
    client = redis.Redis.from_url(url)
    before = keys()
    r = run("pause", "q1", "-b", url, "--dry-run", "-o", "json")
    assert r.exit_code == 0 and sorted(r.json()["workers"]) == names, r
    assert not client.exists("celerytool.paused")  # a dry run records nothing
    r = run("pause", "q1", "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted((row["worker"], row["ok"]) for row in r.json()) == [(n, True) for n in names]
    assert _queues(run, url)["q1"].get("paused") is True and "paused" not in _queues(run, url)["q2"]
    workers = _workers(run, url)
    assert all(workers[n]["paused"] == ["q1"] and "q1" not in workers[n]["queues"] for n in names), workers
    held = app.send_task("worker_tasks.add", args=[1, 2], queue="q1")
    assert app.send_task("worker_tasks.add", args=[3, 4], queue="q2").get(timeout=30) == 7  # q2 goes on
    time.sleep(5)
    assert client.llen("q1") == 1 and held.state == "PENDING"  # nobody took it
    # another operator (a new process, nothing shared but the broker) resumes exactly those workers
    r = run("resume", "q1", "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted((row["worker"], row["ok"]) for row in r.json()) == [(n, True) for n in names]
    assert held.get(timeout=30) == 3
    assert "paused" not in _queues(run, url)["q1"]
    workers = _workers(run, url)
    assert all(workers[n]["paused"] == [] and "q1" in workers[n]["queues"] for n in names), workers
    assert not client.exists("celerytool.paused")
    r = run("resume", "q1", "-b", url, "--yes")
    assert r.exit_code == 1 and "not paused" in r.stderr, r
    assert_clean(before, keys())
    client.close()


def test_pause_of_a_queue_nobody_consumes_exits_1_and_records_nothing(run, two):
    import redis

    r = run("pause", "nobody-consumes-this", "-b", two["url"], "--yes")
    assert r.exit_code == 1 and "no answering worker consumes" in r.stderr, r
    assert not redis.Redis.from_url(two["url"]).exists("celerytool.paused")


def test_shutdown_stops_exactly_the_addressed_worker(run, two, keys, tmp_path):
    w3 = start_worker(two["url"], tmp_path / "w3", queues="q3", pool="solo", prefix="w3")
    try:
        before = keys()
        for fmt in ("table", "json"):  # --dry-run names the worker and sends nothing (as a table too)
            r = run("shutdown", "-d", w3.name, "-b", two["url"], "--dry-run", "-o", fmt)
            assert r.exit_code == 0 and w3.name in r.stdout and f"would shut down 1 worker(s): {w3.name}" in r.stderr, r
            assert fmt == "json" or "would be asked" in r.stdout, r
        assert run("shutdown", "-d", w3.name, "-b", two["url"], "--dry-run", "-o", "json").json()["workers"] == [w3.name]
        assert w3.proc.poll() is None
        r = run("shutdown", "-d", w3.name, "-b", two["url"], "--yes", "-o", "json")
        assert r.exit_code == 0, r
        assert [(row["worker"], row["ok"]) for row in r.json()] == [(w3.name, True)]
        w3.proc.wait(30)  # the process exits: a warm shutdown
        r = run("workers", "-b", two["url"], "-o", "json")
        assert sorted(w["name"] for w in r.json() if w["status"] == "online") == sorted(
            [two["a"].name, two["b"].name])
        assert_clean(before, keys())
    finally:
        w3.stop(wait=5)


def test_rate_limit_1_per_s_spaces_the_next_5_tasks_on_that_worker(run, two, tmp_path):
    """A behaviour of the worker (what Celery was asked), not of celerytool's speed."""
    import time

    w5 = start_worker(two["url"], tmp_path / "w5", queues="q5", pool="solo", prefix="w5")
    try:
        r = run("rate-limit", "worker_tasks.add", "1/s", "-b", two["url"], "-d", w5.name, "--yes")
        assert r.exit_code == 0, r
        app = two["app"]
        start = time.monotonic()
        results = [app.send_task("worker_tasks.add", args=[i, i], queue="q5") for i in range(5)]
        assert [res.get(timeout=60) for res in results] == [0, 2, 4, 6, 8]
        assert time.monotonic() - start >= 4.0
        r = run("rate-limit", "worker_tasks.add", "0", "-b", two["url"], "-d", w5.name, "--yes", "-o", "json")
        assert r.exit_code == 0, r
        assert r.json()[0]["reply"] == "rate limit disabled successfully"
    finally:
        w5.stop(wait=5)


def test_pool_grow_shrink_and_a_time_limit_enforced_after_pool_restart_not_before(run, two, tmp_path):
    """Celery 5.7 prefork: `time-limit` shows at once in `inspect registered`, but the pool
    applies it only after `pool restart` (docs/live.md says so; this is what the worker does)."""
    import time

    w6 = start_worker(two["url"], tmp_path / "w6", queues="q6", pool="prefork", concurrency=1, prefix="w6",
                      env={"CT_POOL_RESTARTS": "1"})
    try:
        app, url = two["app"], two["url"]
        # a prefork worker without --autoscale: pool grow 2 is two more pool processes, shrink takes them back
        assert _processes(run, url, w6.name) == 1
        r = run("pool", "grow", "2", "-b", url, "-d", w6.name, "--yes")
        assert r.exit_code == 0, r
        wait_for(lambda: _processes(run, url, w6.name) == 3, timeout=15)
        r = run("workers", "-b", url, "-o", "json")
        assert {w["name"]: w["concurrency"] for w in r.json()}[w6.name] == 3, r
        r = run("pool", "shrink", "2", "-b", url, "-d", w6.name, "--yes")
        assert r.exit_code == 0, r
        wait_for(lambda: _processes(run, url, w6.name) == 1, timeout=15)
        r = run("time-limit", "worker_tasks.slow", "--soft", "1", "--hard", "2", "-b", url, "-d", w6.name, "--yes")
        assert r.exit_code == 0, r
        start = time.monotonic()
        before = app.send_task("worker_tasks.slow", args=[3], queue="q6")
        before.get(timeout=30, propagate=False)
        assert before.state == "SUCCESS" and time.monotonic() - start >= 3  # not enforced yet
        r = run("pool", "restart", "-b", url, "-d", w6.name, "--yes")
        assert r.exit_code == 0, r
        after = app.send_task("worker_tasks.slow", args=[3], queue="q6")
        after.get(timeout=30, propagate=False)
        assert after.state == "FAILURE" and "TimeLimitExceeded" in repr(after.result), after.result
    finally:
        w6.stop(wait=5)
