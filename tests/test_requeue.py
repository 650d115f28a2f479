"""unacked / requeue with a real celery worker killed (SIGKILL) while holding tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from timing import within

from services import wait_for

TASKS = '''
import os, time
from celery import Celery
app = Celery("ctt", broker=os.environ["BROKER"], backend=os.environ["BROKER"])
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=4, broker_connection_retry_on_startup=True)

@app.task(name="tasks.hold")
def hold(x):
    while os.path.exists(os.environ["BLOCK"]):
        time.sleep(0.02)
    return x * 2
'''


def start_worker(tmp_path, redis_url, name):
    env = {**os.environ, "BROKER": redis_url, "BLOCK": str(tmp_path / "block"),
           "PYTHONPATH": str(tmp_path), "C_FORCE_ROOT": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ctttasks", "worker", "-P", "threads", "-c", "2", "-n", f"{name}@test",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)




@pytest.fixture
def worker_env(tmp_path, redis_url):
    (tmp_path / "ctttasks.py").write_text(TASKS)
    (tmp_path / "block").write_text("")
    procs = []
    yield tmp_path, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_requeue_after_a_worker_died(run, redis_url, redis_client, celery_app, worker_env):
    tmp_path, procs = worker_env
    ids = [celery_app.send_task("tasks.hold", (i,), priority=5 if i == 2 else 0).id for i in range(3)]
    w1 = start_worker(tmp_path, redis_url, "w1")
    procs.append(w1)
    assert wait_for(lambda: redis_client.hlen("unacked") == 3, timeout=30), "worker did not take the tasks"
    w1.send_signal(signal.SIGKILL)
    w1.wait()
    assert redis_client.llen("celery") == 0 and redis_client.hlen("unacked") == 3

    listed = run("unacked", "-b", redis_url, "-o", "json")
    assert listed.exit_code == 0, listed
    rows = listed.json()
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert all(r["queue"] == "celery" and r["task"] == "tasks.hold" and r["age"] >= 0 for r in rows)
    assert run("unacked", "other", "-b", redis_url, "-o", "json").json() == []

    none = run("requeue", "-b", redis_url, "--older-than", "1h", "-y", "-o", "json")
    assert none.json()["requeued"] == 0 and redis_client.hlen("unacked") == 3

    r = run("requeue", "celery", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["requeued"] == 3
    assert "may be running" in r.stderr
    assert redis_client.hlen("unacked") == 0 and redis_client.zcard("unacked_index") == 0
    assert json.loads(redis_client.lindex("celery\x06\x163", 0))["headers"]["id"] == ids[2]
    queued = [json.loads(x) for x in redis_client.lrange("celery", 0, -1)]
    queued += [json.loads(x) for x in redis_client.lrange("celery\x06\x163", 0, -1)]
    assert sorted(m["headers"]["id"] for m in queued) == sorted(ids)
    assert all(m["headers"]["redelivered"] and m["properties"]["delivery_info"]["redelivered"]
               for m in queued)

    os.unlink(tmp_path / "block")
    procs.append(start_worker(tmp_path, redis_url, "w2"))
    results = [celery_app.AsyncResult(i).get(timeout=30) for i in ids]
    assert sorted(results) == [0, 2, 4]


def test_live_commands_leave_a_dead_workers_unacked_tasks_alone(run, redis_url, redis_client, celery_app,
                                                               worker_env):
    """A worker killed holding tasks leaves them in ``unacked``; two hours on (past kombu's default
    visibility timeout) the read commands that open a control session must not put them back on
    the queue (kombu's sweep would: a duplicate when a worker still runs one)."""
    tmp_path, procs = worker_env
    ids = [celery_app.send_task("tasks.hold", (i,)).id for i in range(3)]
    w1 = start_worker(tmp_path, redis_url, "w1")
    procs.append(w1)
    assert wait_for(lambda: redis_client.hlen("unacked") == 3, timeout=30), "worker did not take the tasks"
    w1.send_signal(signal.SIGKILL)
    w1.wait()
    two_hours_ago = time.time() - 7200
    redis_client.zadd("unacked_index", {tag: two_hours_ago for tag in redis_client.hkeys("unacked")}, xx=True)

    def state():
        return (redis_client.hgetall("unacked"), redis_client.zrange("unacked_index", 0, -1, withscores=True),
                redis_client.lrange("celery", 0, -1))

    before = state()
    for args in (["workers", "-t", "1"], ["inspect", "ping", "-t", "1"], ["inspect", "active", "-t", "1"],
                 ["doctor"], ["top", "--once"], ["shutdown", "--dry-run", "-t", "1"],
                 ["events", "-n", "1", "-t", "1"]):
        run(*args, "-b", redis_url)
        assert state() == before, args
    assert sorted(r["id"] for r in run("unacked", "-b", redis_url, "-o", "json").json()) == sorted(ids)


def test_requeue_respects_the_unacked_mutex(run, redis_url, redis_client, celery_app):
    redis_client.set("unacked_mutex", "someone", px=60000)
    redis_client.hset("unacked", "t1", json.dumps([{"body": "", "headers": {}, "properties": {}}, "", "celery"]))
    redis_client.zadd("unacked_index", {"t1": time.time() - 10})
    start = time.monotonic()
    r = run("requeue", "-b", redis_url, "-y", "--lock-wait", "0.3")
    assert r.exit_code == 1 and "unacked_mutex" in r.stderr
    assert time.monotonic() - start < within(5)
    assert redis_client.hlen("unacked") == 1


def test_unacked_and_requeue_are_redis_only(run):
    for cmd in ("unacked", "requeue"):
        r = run(cmd, "-b", "amqp://guest:guest@127.0.0.1:1/", "-y" if cmd == "requeue" else "--limit=1")
        assert r.exit_code == 2 and "Redis-only" in r.stderr, r
