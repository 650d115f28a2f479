"""Quorum queues' delivery limits on RabbitMQ 3.x and 4.x: peek, --dry-run and the walks never let
the broker drop a message for the returns they make (celerytool/brokers/amqp/budget.py).

Each test runs on both brokers (rabbit3 / rabbit4).  The first test measures the broker's own
rule, so that a broker that counts differently fails here, not silently in the others.
"""

from __future__ import annotations

import pika
import pytest
from amqp_helpers import depth, drain, wait_for

from conftest import make_app


def quorum(ch, name: str, limit: int | None = None) -> dict:
    args = {"x-queue-type": "quorum"}
    if limit is not None:
        args["x-delivery-limit"] = limit
    ch.queue_declare(name, durable=True, arguments=args)
    return args


def celery_sends(url: str, queue: str, arguments: dict, n: int, task: str = "tasks.q") -> list[str]:
    """n tasks sent by real Celery to ``queue`` (declared by Celery with the same arguments)."""
    from kombu import Queue

    app = make_app(url, backend="disabled://",
                   task_queues=[Queue(queue, routing_key=queue, queue_arguments=arguments)])
    try:
        ids = [app.send_task(task, args=(i,), queue=queue).id for i in range(n)]
    finally:
        app.close()
    return ids


def nack_peek(ch, queue: str) -> int:
    """What a naive peek does: take every ready message unacked, then nack(requeue) them all."""
    got = 0
    while (ch.basic_get(queue, auto_ack=False))[0] is not None:
        got += 1
    if got:
        ch.basic_nack(0, multiple=True, requeue=True)
    return got


def returns_survived(ch, queue: str, how: str, most: int) -> int:
    """Return the queue's one message again and again; how many returns it survived."""
    for returns in range(most + 1):
        try:
            wait_for(lambda: depth(ch, queue) == 1, timeout=3, every=0.05)
        except AssertionError:  # not back: the broker dropped it
            return returns - 1
        method, props, _ = ch.basic_get(queue, auto_ack=False)
        assert (props.headers or {}).get("x-delivery-count", 0) == returns
        if how == "nack":
            ch.basic_nack(method.delivery_tag, requeue=True)
        else:
            ch.basic_reject(method.delivery_tag, requeue=True)
    return most


def test_the_broker_counts_returns_as_budget_py_says(amqp_url, pika_channel, rabbit_node):
    """Limit L: a message survives L returns, the (L+1)th drops it, nack or reject alike; RabbitMQ
    4.0 sets 20 when the queue has no limit, 3.x none."""
    ch = pika_channel
    ch.confirm_delivery()
    four = rabbit_node.name == "rabbit4"
    for name, limit, how, expected in (("nack2", 2, "nack", 2), ("reject2", 2, "reject", 2),
                                        ("default", None, "nack", 20 if four else 22),
                                        # -1: no limit on 4.x, but on 3.10 the first return drops it
                                        ("minus1", -1, "nack", 22 if four else 0)):
        quorum(ch, name, limit)
        ch.basic_publish("", name, b"m", pika.BasicProperties(delivery_mode=2))
        survived = returns_survived(ch, name, how, 22)
        assert survived == expected, (rabbit_node.name, name, survived)


def test_peeks_past_the_limit_lose_nothing(amqp_url, pika_channel, run):
    """x-delivery-limit 3: a naive nack peek loses the messages at the 4th; 12 celerytool peeks do not."""
    args = quorum(pika_channel, "naive", limit=3)
    naive_ids = celery_sends(amqp_url, "naive", args, 3)
    wait_for(lambda: depth(pika_channel, "naive") == 3)
    for _ in range(4):
        nack_peek(pika_channel, "naive")
    assert wait_for(lambda: depth(pika_channel, "naive") == 0, timeout=10) is True  # the proof it is real
    assert naive_ids

    celerytool_ids = celery_sends(amqp_url, "qq", args, 4)
    # and one with every property and a header of its own, to check the copies keep them
    props = pika.BasicProperties(delivery_mode=2, priority=3, correlation_id="corr-1", reply_to="replies",
                                 message_id="mid-1", type="kind", app_id="app", expiration="600000",
                                 content_type="application/json", content_encoding="utf-8",
                                 headers={"id": "own-1", "task": "tasks.own", "x-custom": [1, "two"]})
    pika_channel.confirm_delivery()
    pika_channel.basic_publish("", "qq", b'[[1], {}, {}]', props)
    celerytool_ids.append("own-1")
    wait_for(lambda: depth(pika_channel, "qq") == 5)
    seen_tail = 0
    for i in range(12):
        r = run("peek", "qq", "--all", "-b", amqp_url, "-o", "json")
        assert r.exit_code == 0, r
        msgs = r.json()
        assert sorted(m["id"] for m in msgs) == sorted(celerytool_ids), (i, r)
        assert {m["delivery_limit"] for m in msgs} == {3}
        assert all(0 <= m["delivery_count"] <= 2 for m in msgs), [m["delivery_count"] for m in msgs]
        assert all(m["requeued_at_tail"] == (m["delivery_count"] + 1 >= 3) for m in msgs)
        seen_tail += sum(m["requeued_at_tail"] for m in msgs)
        assert "costs each message one delivery attempt (its limit is 3)" in r.stderr
    assert seen_tail >= 5 * 3  # every message went round at least three times
    left = drain(pika_channel, "qq")
    assert sorted(p.headers["id"] for _, p in left) == sorted(celerytool_ids)
    # a copy keeps body, properties and headers, without the broker's count of the original
    body, got = next((b, p) for b, p in left if p.headers["id"] == "own-1")
    assert body == b'[[1], {}, {}]'
    assert {k: getattr(got, k) for k in ("delivery_mode", "priority", "correlation_id", "reply_to", "message_id",
                                         "type", "app_id", "expiration", "content_type", "content_encoding")} == {
        k: getattr(props, k) for k in ("delivery_mode", "priority", "correlation_id", "reply_to", "message_id",
                                       "type", "app_id", "expiration", "content_type", "content_encoding")}
    assert {k: v for k, v in got.headers.items() if k != "x-delivery-count"} == props.headers


def test_a_thousand_peeks_with_the_default_limit_lose_nothing(amqp_url, pika_channel, rabbit_node):
    """1,000 peeks through the broker layer (the command's own code path, without the CLI start-up)."""
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    args = quorum(pika_channel, "thousand")
    ids = celery_sends(amqp_url, "thousand", args, 3)
    wait_for(lambda: depth(pika_channel, "thousand") == 3)
    broker = open_broker(parse_url(amqp_url))
    requeued = 0
    try:
        for i in range(1000):
            msgs = list(broker.peek("thousand", None))
            assert sorted(m.id for m in msgs) == sorted(ids), (i, broker.counts("thousand"), broker.warnings[-3:])
            requeued += sum(m.extra["requeued_at_tail"] for m in msgs)
        limit = broker.budget("thousand").limit
    finally:
        broker.close()
    assert limit == (20 if rabbit_node.name == "rabbit4" else None)
    # 4.x: each message goes round every 19 peeks (20 would reach the limit); 3.x: never
    assert requeued == (3 * (1000 // 20) if rabbit_node.name == "rabbit4" else 0), requeued
    assert sorted(p.headers["id"] for _, p in drain(pika_channel, "thousand")) == sorted(ids)


def test_a_limit_of_minus_one_is_none_on_4_and_drops_at_once_on_3(amqp_url, pika_channel, run, rabbit_node):
    """x-delivery-limit -1: RabbitMQ 4 has no limit; RabbitMQ 3.10 drops at the first return, so
    every message read is re-published (at the tail) rather than returned."""
    args = quorum(pika_channel, "m1", limit=-1)
    ids = celery_sends(amqp_url, "m1", args, 3)
    wait_for(lambda: depth(pika_channel, "m1") == 3)
    for _ in range(3):
        msgs = run("peek", "m1", "-b", amqp_url, "-o", "json").json()
        assert sorted(m["id"] for m in msgs) == sorted(ids)
        if rabbit_node.name == "rabbit4":
            assert {(m["delivery_limit"], m["requeued_at_tail"]) for m in msgs} == {(None, False)}
        else:
            assert {(m["delivery_limit"], m["requeued_at_tail"]) for m in msgs} == {(0, True)}
    assert sorted(p.headers["id"] for _, p in drain(pika_channel, "m1")) == sorted(ids)


def test_a_policy_made_a_moment_ago_counts(amqp_url, rabbit_vhost, pika_channel, run):
    """A delivery-limit policy (2) the management API's queue sample does not show yet."""
    from urllib.parse import quote

    rabbit_vhost.api("PUT", f"/policies/{rabbit_vhost.quoted}/{quote('tight')}",
                     {"pattern": "^pol$", "definition": {"delivery-limit": 2}, "apply-to": "queues"})
    args = quorum(pika_channel, "pol", limit=10)
    ids = celery_sends(amqp_url, "pol", args, 2)
    wait_for(lambda: depth(pika_channel, "pol") == 2)
    for _ in range(6):
        r = run("peek", "pol", "-b", amqp_url, "-o", "json")
        assert sorted(m["id"] for m in r.json()) == sorted(ids), r
        assert {m["delivery_limit"] for m in r.json()} == {2}
    assert sorted(p.headers["id"] for _, p in drain(pika_channel, "pol")) == sorted(ids)


@pytest.mark.parametrize("how", ["dry-run", "limit"])
def test_dry_runs_and_stopped_walks_lose_nothing(amqp_url, pika_channel, run, how):
    """--dry-run reads as peek does; a purge stopped by -n 1 returns the rest of its window.
    x-delivery-limit 2: without the rule, the third run would drop every message returned."""
    args = quorum(pika_channel, "walk", limit=2)
    ids = celery_sends(amqp_url, "walk", args, 6, task="tasks.keep")
    wait_for(lambda: depth(pika_channel, "walk") == 6)
    for i in range(5):
        extra = ("--dry-run",) if how == "dry-run" else ("--limit", "1", "-y")
        r = run("purge", "walk", "--task", "tasks.keep", *extra, "-b", amqp_url, "-o", "json")
        assert r.exit_code == 0, r
        expected = 6 - (i + 1 if how == "limit" else 0)
        wait_for(lambda n=expected: depth(pika_channel, "walk") == n, timeout=10)
    remaining = [p.headers["id"] for _, p in drain(pika_channel, "walk")]
    assert len(remaining) == (1 if how == "limit" else 6) and set(remaining) <= set(ids)


def test_without_the_management_api_the_default_limit_is_assumed(amqp_url, pika_channel, rabbit_node):
    """The API down: the queue's type and limit are unknown, so the version's default is followed
    (20 on 4.x) and a warning says so; 25 peeks of a default quorum queue lose nothing."""
    from celerytool.brokers import open_broker
    from celerytool.brokers.base import BrokerOptions
    from celerytool.urls import parse_url

    from services import free_port

    args = quorum(pika_channel, "noapi")
    ids = celery_sends(amqp_url, "noapi", args, 2)
    wait_for(lambda: depth(pika_channel, "noapi") == 2)
    broker = open_broker(parse_url(amqp_url), BrokerOptions(management_url=f"http://127.0.0.1:{free_port()}"))
    try:
        for i in range(25):
            assert sorted(m.id for m in broker.peek("noapi", None)) == sorted(ids), i
        assert any("cannot say its type or delivery limit" in w for w in broker.warnings), broker.warnings
        assert broker.budget("noapi").limit == (20 if rabbit_node.name == "rabbit4" else None)
    finally:
        broker.close()
    assert sorted(p.headers["id"] for _, p in drain(pika_channel, "noapi")) == sorted(ids)


def test_the_table_shows_deliveries_and_the_tail(amqp_url, pika_channel, run):
    """The table's deliveries column: count / limit as read, and "to tail" for a re-published one."""
    args = quorum(pika_channel, "tbl", limit=3)
    ids = celery_sends(amqp_url, "tbl", args, 1)
    wait_for(lambda: depth(pika_channel, "tbl") == 1)
    first = run("peek", "tbl", "-b", amqp_url, env={"COLUMNS": "200"})
    assert "deliveries" in first.stdout and " 0/3" in first.stdout and "to tail" not in first.stdout, first
    assert "reading it costs each message one delivery attempt (its limit is 3)" in first.stderr
    run("peek", "tbl", "-b", amqp_url, "-o", "json")
    third = run("peek", "tbl", "-b", amqp_url, env={"COLUMNS": "200"})
    assert "2/3 to tail" in third.stdout, third
    assert [p.headers["id"] for _, p in drain(pika_channel, "tbl")] == ids
