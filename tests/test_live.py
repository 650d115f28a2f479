"""workers, inspect, revoke, events, top against two real ``celery worker`` processes on Redis.

Worker A consumes ``qa`` (threads, concurrency 2, sends events with -E),
worker B consumes ``qb`` (threads, concurrency 3, no -E).  The module has a
redis-server of its own: other tests flush theirs, which would unbind the
workers.  Every command must leave the key set as it found it.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from conftest import make_app
from services import start_redis, wait_for
from workers import start_worker


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("live-redis"))
    url = server.url(0)
    tmp = tmp_path_factory.mktemp("live-workers")
    started = []
    try:
        a = start_worker(url, tmp / "a", queues="qa", pool="threads", concurrency=2, events=True,
                         prefix="wa")
        started.append(a)
        b = start_worker(url, tmp / "b", queues="qb", pool="threads", concurrency=3, prefix="wb")
        started.append(b)
        app = make_app(url)
        yield {"url": url, "a": a, "b": b, "app": app, "server": server}
        app.close()
    finally:
        for w in started:
            w.stop(wait=5)
        server.stop()


@pytest.fixture
def keys(live):
    """The key set of the live database now: call it again to compare."""
    import redis

    client = redis.Redis.from_url(live["url"])

    def snapshot():
        return {k.decode() for k in client.keys("*")}

    yield snapshot
    client.close()


def assert_clean(before, after):
    leftover = {k for k in after - before if "pidbox" in k or "celeryev" in k}
    assert not leftover, f"left behind: {leftover}"


def test_workers_lists_both_with_queues_and_concurrency(run, live, keys):
    before = keys()
    r = run("workers", "-b", live["url"], "-o", "json")
    assert r.exit_code == 0, r
    rows = {w["name"]: w for w in r.json()}
    a, b = rows[live["a"].name], rows[live["b"].name]
    assert (a["status"], a["queues"], a["concurrency"], a["pool"]) == ("online", ["qa"], 2, "threads")
    assert (b["status"], b["queues"], b["concurrency"], b["pool"]) == ("online", ["qb"], 3, "threads")
    assert a["pid"] == live["a"].proc.pid and b["pid"] == live["b"].proc.pid
    assert a["version"] and a["uptime"] is not None
    assert_clean(before, keys())
    # the table names both
    r = run("workers", "-b", live["url"])
    assert live["a"].name in r.stdout and live["b"].name in r.stdout


def test_workers_is_fast_when_everyone_answered(run, live):
    start = time.monotonic()
    r = run("workers", "-b", live["url"], "--timeout", "5", "-o", "json")
    assert r.exit_code == 0, r
    assert time.monotonic() - start < 2.5, "waited for the timeout although both workers answered"


def test_wait_for_more_workers_than_exist_fails_after_timeout(run, live, keys):
    before = keys()
    start = time.monotonic()
    r = run("workers", "-b", live["url"], "--wait-for", "3", "--timeout", "3", "-o", "json")
    elapsed = time.monotonic() - start
    assert r.exit_code == 1, r
    assert 2.5 <= elapsed < 5, elapsed
    assert "2 of 3" in r.stderr
    assert_clean(before, keys())


def test_wait_for_two_succeeds(run, live):
    r = run("workers", "-b", live["url"], "--wait-for", "2", "--timeout", "10", "-o", "json")
    assert r.exit_code == 0, r
    assert len([w for w in r.json() if w["status"] == "online"]) == 2


def test_no_worker_at_all_exits_1_without_hanging(run, live):
    empty = live["server"].url(7)
    start = time.monotonic()
    r = run("workers", "-b", empty, "--timeout", "1")
    assert r.exit_code == 1, r
    assert time.monotonic() - start < 3
    assert "no worker answered" in r.stderr


def test_unreachable_broker_is_exit_69(run):
    from services import free_port

    r = run("workers", "-b", f"redis://127.0.0.1:{free_port()}/0", "--connect-timeout", "1")
    assert r.exit_code == 69, r


def test_inspect_active_and_scheduled(run, live, keys):
    app = live["app"]
    long_id = f"long-{uuid.uuid4()}"
    eta_id = f"eta-{uuid.uuid4()}"
    app.send_task("worker_tasks.slow", args=[12.5], kwargs={}, queue="qa", task_id=long_id)
    app.send_task("worker_tasks.mark", args=["later"], queue="qb", task_id=eta_id, countdown=600)
    before = keys()

    def active():
        r = run("inspect", "active", "-b", live["url"], "-o", "json")
        return [t for t in r.json() if t["id"] == long_id]

    rows = wait_for(active, timeout=15)
    assert rows[0]["task"] == "worker_tasks.slow"
    assert rows[0]["args"] == [12.5] and rows[0]["kwargs"] == {}
    assert rows[0]["worker"] == live["a"].name and rows[0]["state"] == "active"
    assert rows[0]["time_started"]

    def scheduled():
        r = run("inspect", "scheduled", "-b", live["url"], "-o", "json")
        return [t for t in r.json() if t["id"] == eta_id]

    rows = wait_for(scheduled, timeout=15)
    assert rows[0]["worker"] == live["b"].name and rows[0]["args"] == ["later"]
    assert rows[0]["eta"] and rows[0]["eta"] > time.strftime("%Y-%m-%dT%H:%M", time.gmtime())

    # -d: only that worker answers; the table is readable
    r = run("inspect", "active-queues", "-b", live["url"], "-d", live["b"].name, "-o", "json")
    assert [(q["worker"], q["queue"]) for q in r.json()] == [(live["b"].name, "qb")]
    r = run("inspect", "registered", "-b", live["url"], "-o", "json")
    assert {"worker_tasks.slow", "worker_tasks.mark"} <= {row["task"] for row in r.json()}
    r = run("inspect", "stats", "-b", live["url"])
    assert r.exit_code == 0 and live["a"].name in r.stdout
    assert_clean(before, keys())
    live["long_id"] = long_id


def test_inspect_unknown_destination_exits_1(run, live):
    start = time.monotonic()
    r = run("inspect", "active", "-b", live["url"], "-d", "nobody@nowhere", "--timeout", "1")
    assert r.exit_code == 1, r
    assert "nobody@nowhere" in r.stderr and time.monotonic() - start < 3


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]
