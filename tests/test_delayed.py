"""delayed: ETA tasks held by a real worker (Redis unacked), and Celery's native delayed delivery
on RabbitMQ (quorum queues, a real Celery 5.7 worker declares the topology)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import redis

from conftest import make_app
from services import wait_for
from workers import start_worker


@pytest.fixture(scope="module")
def eta_worker(redis_server, tmp_path_factory):
    url = redis_server.url(10)
    redis.Redis(port=redis_server.port, db=10).flushdb()
    worker = start_worker(url, tmp_path_factory.mktemp("eta-worker"), queues="celery,later")
    app = make_app(url)
    yield {"url": url, "app": app, "client": redis.Redis(port=redis_server.port, db=10)}
    worker.stop()
    app.close()


def test_delayed_on_redis_lists_prefetched_eta_tasks(run, eta_worker):
    app, client = eta_worker["app"], eta_worker["client"]
    asked = {}
    for countdown, queue in ((300, "celery"), (7200, "later"), (30, "celery")):
        sent_at = time.time()
        res = app.send_task("worker_tasks.add", (countdown, 1), countdown=countdown, queue=queue)
        asked[res.id] = (sent_at + countdown, queue)
    wait_for(lambda: client.hlen("unacked") == 3, 30)  # the worker prefetched all three
    r = run("delayed", "-b", eta_worker["url"], "-o", "json")
    assert r.exit_code == 0, r
    rows = r.json()
    assert [row["id"] for row in rows] == sorted(asked, key=lambda i: asked[i][0])  # soonest first
    for row in rows:
        due, queue = asked[row["id"]]
        got = dt.datetime.fromisoformat(row["due"]).timestamp()
        assert abs(got - due) < 2, (row, due)
        assert row["queue"] == queue and row["waits_in"] == "unacked" and row["task"] == "worker_tasks.add"
        assert row["delivered_again"] == (due - time.time() > 3600)  # beyond the default 1 h visibility timeout
    assert "deliver them to a worker again" in r.stderr
    r = run("delayed", "-b", eta_worker["url"], "--visibility-timeout", "3h", "-o", "json")
    assert not any(row["delivered_again"] for row in r.json()) and "again" not in r.stderr
    r = run("delayed", "later", "-b", eta_worker["url"], "-o", "json")
    assert [row["queue"] for row in r.json()] == ["later"]
    r = run("delayed", "-b", eta_worker["url"], "--where", "args[0] == 30", "-o", "json")
    assert [row["args"] for row in r.json()] == [[30, 1]]
    table = run("delayed", "-b", eta_worker["url"], "--full-ids")
    assert table.exit_code == 0 and "unacked (delivered again)" in table.stdout
    # the fast path reads kombu's real entries, with the full decoder's answer (rows above)
    from celerytool.brokers.redis.unacked import _fast_delayed

    fast = {t.id: t for t in (_fast_delayed(raw, time.time(), time.time(), 3600.0, {}, lambda ex, rk: [rk])
                              for raw in client.hvals("unacked"))}
    assert None not in fast and set(fast) == set(asked)
    assert all(fast[row["id"]].args == row["args"] and fast[row["id"]].due == row["due"] for row in rows)
    for flag in ("--delayed", None):  # on Redis, by default too (a small unacked hash)
        r = run("queues", *([flag] if flag else []), "-b", eta_worker["url"], "-o", "json")
        assert {q["name"]: q["delayed"] for q in r.json()} == {"celery": 2, "later": 1}, r
    table = run("queues", "-b", eta_worker["url"])
    assert table.stdout.splitlines()[0].split()[-1] == "delayed", table
    for flag in ("--delayed", None):  # queues named: only those, with their own count (no other destination)
        r = run("queues", "later", "nosuch", *([flag] if flag else []), "-b", eta_worker["url"], "-o", "json")
        assert [(q["name"], q["delayed"]) for q in r.json()] == [("later", 1), ("nosuch", 0)], r
    r = run("summary", "celery", "--delayed", "-b", eta_worker["url"], "-o", "json")
    assert [(g["value"], g["count"]) for g in r.json()] == [("worker_tasks.add", 2)], r
    assert client.hlen("unacked") == 3  # read-only


def test_delayed_on_rabbitmq_native_delayed_delivery(run, amqp_url, rabbit_vhost):
    """Celery 5.5+'s native delayed delivery: the topology as kombu declares it (what a worker on
    quorum queues does at start), tasks sent by Celery's own send_task with countdowns."""
    from kombu import Connection, Exchange, Queue
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
        declare_native_delayed_delivery_exchanges_and_queues,
    )

    dq = Queue("dq", Exchange("dq", type="topic"), routing_key="dq", queue_arguments={"x-queue-type": "quorum"})
    with Connection(amqp_url) as conn:
        declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
        dq(conn.default_channel).declare()
        bind_queue_to_native_delayed_delivery_exchange(conn, dq)
    app = make_app(amqp_url, backend="disabled://", task_queues=[dq])
    try:
        asked = {}
        for countdown in (3600, 300, 5):  # the three: the 5 s one is listed, then delivered
            sent_at = time.time()
            asked[app.send_task("tasks.later", (countdown,), queue="dq", countdown=countdown).id] = (
                sent_at + countdown)
    finally:
        app.close()
    soon = min(asked, key=asked.get)

    def waiting() -> int:  # how many have reached their levels (publishes are asynchronous)
        with Connection(amqp_url) as conn:
            ch = conn.default_channel
            return sum(ch.queue_declare(f"celery_delayed_{lv}", passive=True).message_count for lv in range(28))

    wait_for(lambda: waiting() == 3, 4)
    r = run("delayed", "-b", amqp_url, "--management-url", rabbit_vhost.node.management_url, "-o", "json")
    assert r.exit_code == 0, r
    rows = r.json()
    assert time.time() < asked[soon], "the 5 s task was due before delayed ran: a machine too slow for this test"
    assert [row["id"] for row in rows] == sorted(asked, key=asked.get)  # soonest first
    for row in rows:
        got = dt.datetime.fromisoformat(row["due"]).timestamp()
        assert abs(got - asked[row["id"]]) < 2, row
        assert row["queue"] == "dq" and row["task"] == "tasks.later"
        # each waits in the level of one of its delay's bits: the highest until that level's TTL
        # has passed (5 s = 4 + 1: celery_delayed_2, then celery_delayed_0)
        levels = [f"celery_delayed_{b}" for b in range(28) if int(row["args"][0]) >> b & 1]
        assert row["waits_in"] in levels, row
        if row["id"] != soon:
            assert row["waits_in"] == levels[-1], row
    # once due, the 5 s task is on its destination queue and no longer delayed
    with Connection(amqp_url) as conn:
        wait_for(lambda: conn.default_channel.queue_declare("dq", passive=True).message_count == 1, 15)
    r = run("delayed", "-b", amqp_url, "-o", "json")
    assert [row["id"] for row in r.json()] == sorted((i for i in asked if i != soon), key=asked.get), r
    del asked[soon]
    r = run("delayed", "other", "-b", amqp_url, "-o", "json")
    assert r.json() == []
    # queues hides the 28 levels (plumbing, shown with --internal); the destination is listed
    names = [q["name"] for q in run("queues", "-b", amqp_url, "--management-url",
                                    rabbit_vhost.node.management_url, "-o", "json").json()]
    assert "dq" in names and not any(n.startswith("celery_delayed_") for n in names)
    internal = [q["name"] for q in run("queues", "--internal", "-b", amqp_url, "--management-url",
                                       rabbit_vhost.node.management_url, "-o", "json").json()]
    levels = [n for n in internal if n.startswith("celery_delayed_")]
    assert levels == [f"celery_delayed_{i}" for i in range(28)]  # in natural order
    # queues: a note by default (the levels hold tasks); --delayed counts them by destination
    api = ["--management-url", rabbit_vhost.node.management_url]
    # (the note counts from the management API's statistics sample, taken every 5 s)
    r = wait_for(lambda: "2 task(s)" in (q := run("queues", "-b", amqp_url, *api)).stderr and q, 20)
    assert "2 task(s) wait in Celery's delayed-delivery queues" in r.stderr and "delayed" not in r.stdout, r
    r = run("queues", "--delayed", "-b", amqp_url, *api, "-o", "json")
    assert {q["name"]: (q["messages"], q.get("delayed")) for q in r.json()}["dq"] == (1, 2), r
    r = run("queues", "--delayed", "-b", amqp_url, *api)
    assert r.exit_code == 0 and "delayed" in r.stdout.splitlines()[0], r
    # summary --delayed: the two by task, and by due hour (as Celery was asked)
    r = run("summary", "dq", "--delayed", "-b", amqp_url, *api, "-o", "json")
    assert [(g["value"], g["count"]) for g in r.json()] == [("tasks.later", 2)], r
    r = run("summary", "dq", "--delayed", "--by", "eta", "-b", amqp_url, *api, "-o", "json")
    hours = sorted(dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()[:13] + ":00" for t in asked.values())
    assert sorted(g["value"][:16] for g in r.json() for _ in range(g["count"])) == hours, r
    # read-only: every task is still waiting
    r = run("delayed", "-b", amqp_url, "-o", "json")
    assert sorted(row["id"] for row in r.json()) == sorted(asked)


def test_send_countdown_goes_through_native_delayed_delivery_as_celery_does(run, amqp_url, rabbit_vhost,
                                                                          redis_server, tmp_path):
    """A real Celery 5.7 worker on a quorum queue behind a topic exchange (it declares the
    delayed-delivery topology and binds its queue): `send --countdown 5` is routed through
    celery_delayed_27, `delayed` lists it until due, and the worker runs it at its due time."""
    backend = redis_server.url(11)
    worker = start_worker(amqp_url, tmp_path / "w", queues="dq", backend_url=backend,
                          env={"CT_QUEUE_TYPE": "quorum", "CT_EXCHANGE_TYPE": "topic", "CT_DEFAULT_QUEUE": "dq"})
    api = ["--management-url", rabbit_vhost.node.management_url]
    try:
        # the worker's delayed-delivery bootstep binds dq's exchange to celery_delayed_delivery
        wait_for(lambda: any(b.get("source") == "celery_delayed_delivery" and b.get("destination") == "dq"
                             for b in rabbit_vhost.api("GET", f"/bindings/{rabbit_vhost.quoted}") or []), 30)
        sent_at = time.time()
        r = run("send", "worker_tasks.add", "20", "22", "--countdown", "5", "-q", "dq", "-b", amqp_url, *api,
                "-o", "json")
        assert r.exit_code == 0, r
        assert r.json()["exchange"] == "celery_delayed_27" and "native delayed delivery" in r.stderr, r
        task_id = r.json()["id"]
        listed = wait_for(lambda: [row for row in run("delayed", "dq", "-b", amqp_url, *api, "-o", "json").json()
                                   if row["id"] == task_id], 4)
        assert listed[0]["waits_in"].startswith("celery_delayed_"), listed
        assert abs(dt.datetime.fromisoformat(listed[0]["due"]).timestamp() - (sent_at + 5)) < 2, listed
        app = make_app(amqp_url, backend)
        try:
            assert app.AsyncResult(task_id).get(timeout=30) == 42
            done = app.AsyncResult(task_id).date_done.replace(tzinfo=dt.timezone.utc).timestamp()
        finally:
            app.close()
        assert sent_at + 5 - 1 <= done <= sent_at + 5 + 2, done - sent_at  # at its due time
        # --no-delayed-delivery: straight to dq with the ETA header (the worker holds it)
        r = run("send", "worker_tasks.add", "1", "1", "--countdown", "1", "-q", "dq", "--no-delayed-delivery",
                "-b", amqp_url, *api, "-o", "json")
        assert r.exit_code == 0 and r.json()["exchange"] == "", r
    finally:
        worker.stop(wait=5)


def test_send_countdown_to_a_quorum_queue_behind_a_direct_exchange_warns(run, amqp_url, rabbit_vhost):
    from kombu import Connection, Exchange, Queue

    with Connection(amqp_url) as conn:
        Queue("dqd", Exchange("dqd", type="direct"), routing_key="dqd",
              queue_arguments={"x-queue-type": "quorum"})(conn.default_channel).declare()
    r = run("send", "tasks.later", "--countdown", "60", "-q", "dqd", "-b", amqp_url,
            "--management-url", rabbit_vhost.node.management_url, "-o", "json")
    assert r.exit_code == 0 and r.json()["exchange"] == "", r
    assert "quorum queue and native delayed delivery does not apply" in r.stderr, r


def test_queues_makes_no_more_management_calls_with_the_delayed_topology(amqp_url, rabbit_vhost):
    """The 28 delay levels are hidden using the one queue listing: `queues` asks the management
    API as often as on a vhost without the topology (once)."""
    from kombu import Connection, Exchange, Queue
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
        declare_native_delayed_delivery_exchanges_and_queues,
    )

    from celerytool.brokers import BrokerOptions, open_broker
    from celerytool.urls import parse_url

    def calls() -> tuple[int, list[str]]:
        broker = open_broker(parse_url(amqp_url), BrokerOptions(management_url=rabbit_vhost.node.management_url))
        try:
            names = [q.name for q in broker.queues()]
            return broker.management.calls, names
        finally:
            broker.close()

    dq = Queue("dq", Exchange("dq", type="topic"), routing_key="dq", queue_arguments={"x-queue-type": "quorum"})
    with Connection(amqp_url) as conn:
        dq(conn.default_channel).declare()
    without, names = calls()
    assert names == ["dq"]
    with Connection(amqp_url) as conn:
        declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
        bind_queue_to_native_delayed_delivery_exchange(conn, dq)
    with_topology, names = calls()
    assert names == ["dq"]  # the levels are plumbing
    assert with_topology <= without == 1
