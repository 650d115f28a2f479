"""RabbitMQ dead letters: peek / summary show x-death, move --to-origin puts them back (real workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pika
import pytest
import redis
from amqp_helpers import depth, settled

from conftest import make_app
from services import wait_for
from workers import start_worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dlx(amqp_url, rabbit_vhost, pika_channel):
    """Queue `work` dead-letters into `work.dlq` (a policy, so the worker's own declare agrees)."""
    rabbit_vhost.api("PUT", f"/policies/{rabbit_vhost.quoted}/ct-dlx",
                     {"pattern": "^work$", "apply-to": "queues",
                      "definition": {"dead-letter-exchange": "", "dead-letter-routing-key": "work.dlq"}})
    pika_channel.queue_declare("work.dlq", durable=True)
    return amqp_url


@pytest.fixture
def rejecting(dlx, redis_server, tmp_path):
    """A real worker on `work` whose task rejects until tmp_path/fixed exists; results in Redis."""
    backend = redis_server.url(11)
    redis.Redis(port=redis_server.port, db=11).flushdb()
    worker = start_worker(dlx, tmp_path / "w", "work", backend_url=backend)
    app = make_app(dlx, backend="disabled://")
    yield {"url": dlx, "app": app, "fixed": str(tmp_path / "fixed"),
           "record": redis.Redis(port=redis_server.port, db=11)}
    worker.proc.kill()  # a warm shutdown on RabbitMQ takes ~10 s; nothing of this worker is kept
    worker.proc.wait()
    app.close()


def _reject_some(env, ch, n):
    ids = [env["app"].send_task("worker_tasks.picky", (i,), {"fixed": env["fixed"]}, queue="work").id
           for i in range(n)]
    wait_for(lambda: depth(ch, "work.dlq") == n, 30)
    return ids


def test_peek_and_summary_show_x_death(run, rejecting, pika_channel):
    ids = _reject_some(rejecting, pika_channel, 3)
    r = run("peek", "work.dlq", "-b", rejecting["url"], "-o", "json")
    assert r.exit_code == 0, r
    rows = r.json()
    assert sorted(m["id"] for m in rows) == sorted(ids)
    for m in rows:
        death = m["x_death"]
        assert death["queue"] == "work" and death["reason"] == "rejected" and death["count"] == 1
        assert death["time"] and death["history"][0]["queue"] == "work"
    r = run("peek", "work.dlq", "-b", rejecting["url"], "--where", 'x_death.reason == "rejected"', "-o", "json")
    assert len(r.json()) == 3
    r = run("peek", "work.dlq", "-b", rejecting["url"], "--where", 'x_death.reason == "expired"', "-o", "json")
    assert r.json() == []
    table = run("peek", "work.dlq", "-b", rejecting["url"])
    assert "rejected from work" in table.stdout
    r = run("summary", "work.dlq", "-b", rejecting["url"], "--by", "x_death.reason", "-o", "json")
    assert [(row["value"], row["count"]) for row in r.json()] == [("rejected", 3)], r
    assert depth(pika_channel, "work.dlq") == 3  # read-only


def test_move_to_origin_and_the_worker_runs_them(run, rejecting, pika_channel):
    ids = _reject_some(rejecting, pika_channel, 4)
    dry = run("move", "work.dlq", "--to-origin", "-b", rejecting["url"], "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry
    assert depth(pika_channel, "work.dlq") == 4
    refused = run("move", "work.dlq", "--to-origin", "-b", rejecting["url"])
    assert refused.exit_code == 2 and depth(pika_channel, "work.dlq") == 4
    open(rejecting["fixed"], "w").close()  # the task is fixed: it now runs
    r = run("move", "work.dlq", "--to-origin", "-b", rejecting["url"], "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["moved"] == 4 and r.json()["kept"] == 0
    record = rejecting["record"]
    wait_for(lambda: record.llen("ct:record") == 4, 30)
    import json

    assert sorted(json.loads(x)["picky"] for x in record.lrange("ct:record", 0, -1)) == [0, 1, 2, 3]
    assert depth(pika_channel, "work.dlq") == 0 and depth(pika_channel, "work") == 0
    assert len(ids) == 4


def test_to_origin_drops_death_headers_and_leaves_others(run, dlx, pika_channel):
    # one dead-lettered by RabbitMQ itself (TTL expiry), one plain message that never died
    pika_channel.queue_declare("work", durable=True)
    pika_channel.basic_publish("", "work", b'{"n": 1}', pika.BasicProperties(
        expiration="1", headers={"id": "expired-1", "task": "t.x", "keep": "me"}, content_type="application/json"))
    wait_for(lambda: depth(pika_channel, "work.dlq") == 1, 20)
    pika_channel.basic_publish("", "work.dlq", b'{"n": 2}', pika.BasicProperties(headers={"id": "plain-2"},
                                                                                   content_type="application/json"))
    settled(pika_channel, "work.dlq")
    r = run("move", "work.dlq", "--to-origin", "-b", dlx, "--yes")
    assert r.exit_code == 0, r
    assert depth(pika_channel, "work.dlq") == 1  # the plain one stays
    method, props, body = pika_channel.basic_get("work", auto_ack=True)
    assert body == b'{"n": 1}' and props.headers.get("keep") == "me"
    assert not {k for k in props.headers if k.startswith("x-")}  # x-death & co dropped


def test_to_origin_refused_on_redis_and_with_a_destination(run, redis_url, dlx):
    r = run("move", "celery", "--to-origin", "-b", redis_url, "--yes")
    assert r.exit_code == 2 and "x-death" in r.stderr
    r = run("move", "work.dlq", "other", "--to-origin", "-b", dlx, "--yes")
    assert r.exit_code == 2
    r = run("move", "work.dlq", "-b", dlx, "--yes")
    assert r.exit_code == 2 and "DST" in r.stderr


def test_kill_mid_move_loses_nothing(dlx, pika_channel):
    """kill -9 of celerytool mid --to-origin: every message in one queue or both (at-least-once)."""
    ch = pika_channel
    n = 3000
    ch.queue_declare("work", durable=True)
    for i in range(n):
        ch.basic_publish("", "work", str(i).encode(), pika.BasicProperties(expiration="1", headers={"n": i}))
    wait_for(lambda: depth(ch, "work.dlq") == n, 60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", "move", "work.dlq", "--to-origin", "-b", dlx,
                             "--yes"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: depth(ch, "work") > 0 or proc.poll() is not None, 30, every=0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: ch.queue_declare("work.dlq", passive=True).method.consumer_count == 0, 10)
    seen = set()
    for queue in ("work", "work.dlq"):
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                break
            seen.add(int(body))
    assert seen == set(range(n))
