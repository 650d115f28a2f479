"""RabbitMQ adapter: queues / bindings through the management API (and its fallback), peek."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from amqp_helpers import declared, depth, drain_ids, publish_plain, settled, wait_for

from services import free_port

ROOT = Path(__file__).resolve().parent.parent


def by_name(rows):
    return {r["name"]: r for r in rows}


# -- queues -----------------------------------------------------------------------------

def test_queues_from_the_management_api(amqp_url, pika_channel, run):
    ch = pika_channel
    ch.queue_declare("prio", durable=True, arguments={"x-max-priority": 10, "x-dead-letter-exchange": "dlx"})
    ch.queue_declare("quorum", durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_declare("held", durable=True)
    ch.queue_declare("w1.celery.pidbox", auto_delete=True)
    publish_plain(ch, "prio", [b"1", b"2", b"3"])
    publish_plain(ch, "quorum", [b"q"])
    publish_plain(ch, "held", [b"a", b"b", b"c", b"d"])
    # a consumer that holds two messages unacked, on a connection of its own
    import pika

    holder = pika.BlockingConnection(pika.URLParameters(amqp_url))
    hch = holder.channel()
    hch.basic_qos(prefetch_count=2)
    hch.basic_consume("held", lambda *a: None, auto_ack=False)
    holder.process_data_events(time_limit=0.5)
    try:
        def listed():
            rows = by_name(run("queues", "-b", amqp_url, "-o", "json").json())
            return rows if rows.get("held", {}).get("unacked") == 2 and rows["prio"].get("unacked") == 0 else None

        rows = wait_for(listed, timeout=20)
    finally:
        holder.close()
    assert set(rows) == {"prio", "quorum", "held"}  # pidbox hidden without --all
    assert rows["held"] | {"arguments": None} == {"name": "held", "messages": 2, "priorities": {}, "exists": True,
                                                  "unacked": 2, "consumers": 1, "type": "classic",
                                                  "arguments": None, "counted": "exact"}
    assert rows["prio"]["messages"] == 3 and rows["prio"]["consumers"] == 0
    assert declared(rows["prio"]["arguments"]) == {"x-max-priority": 10, "x-dead-letter-exchange": "dlx"}
    assert rows["quorum"]["type"] == "quorum" and rows["quorum"]["arguments"]["x-queue-type"] == "quorum"
    assert rows["quorum"]["messages"] == 1
    every = by_name(run("queues", "--internal", "-b", amqp_url, "-o", "json").json())
    assert "w1.celery.pidbox" in every


def test_another_connections_exclusive_queue_is_listed_without_a_warning(amqp_url, run):
    """A worker's event / reply queues are exclusive to its connection: a passive declare of one
    from another connection is refused (405 RESOURCE_LOCKED); queues --internal lists it quietly."""
    import pika

    holder = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        holder.channel().queue_declare("celeryev.held-by-a-worker", exclusive=True)

        def listed():
            r = run("queues", "--internal", "-b", amqp_url, "-o", "json")
            return r if "celeryev.held-by-a-worker" in by_name(r.json()) else None

        r = wait_for(listed, timeout=20)
    finally:
        holder.close()
    assert r.exit_code == 0 and "RESOURCE_LOCKED" not in r.stderr and "warning" not in r.stderr, r
    assert by_name(r.json())["celeryev.held-by-a-worker"]["exists"] is True


def test_queues_names_unknown_ones_and_uses_one_listing(amqp_url, pika_channel, run):
    pika_channel.queue_declare("known", durable=True)
    r = run("queues", "known", "missing", "-b", amqp_url, "-o", "json")
    assert r.exit_code == 0, r
    rows = by_name(r.json())
    assert rows["missing"] == {"name": "missing", "messages": 0, "priorities": {}, "exists": False}
    assert rows["known"]["exists"] is True


def test_fresh_queue_without_statistics_still_has_counts(amqp_url, pika_channel):
    """Right after creation the API has no counts yet: they come from a passive declare."""
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    pika_channel.queue_declare("fresh", durable=True)
    publish_plain(pika_channel, "fresh", [b"x"] * 7)
    broker = open_broker(parse_url(amqp_url))
    try:
        info = {q.name: q for q in broker.queues()}["fresh"]
        calls = broker.management.calls
    finally:
        broker.close()
    assert info.messages == 7
    assert calls == 1


def test_queues_fallback_without_management_api(amqp_url, pika_channel, run):
    pika_channel.queue_declare("celery", durable=True)
    pika_channel.queue_declare("other", durable=True)
    publish_plain(pika_channel, "celery", [b"1", b"2"])
    down = f"http://127.0.0.1:{free_port()}"
    r = run("queues", "-b", amqp_url, "--management-url", down, "-o", "json")
    assert r.exit_code == 0, r
    assert r.json() == [{"name": "celery", "messages": 2, "priorities": {}, "exists": True, "consumers": 0,
                         "counted": "exact"}]
    assert f"management API at {down} unavailable" in r.stderr
    assert "cannot list the queues" in r.stderr and "'celery'" in r.stderr
    named = run("queues", "other", "nope", "-b", amqp_url, "--management-url", down, "-o", "json")
    assert [(q["name"], q["exists"]) for q in named.json()] == [("other", True), ("nope", False)]
    assert "'other', 'nope'" in named.stderr


def test_management_url_with_its_own_credentials(amqp_url, rabbit_node, pika_channel, run):
    pika_channel.queue_declare("creds", durable=True)
    r = run("queues", "-b", amqp_url, "--management-url", f"http://guest:guest@127.0.0.1:{rabbit_node.mgmt_port}/", "-o", "json")
    assert [q["name"] for q in r.json()] == ["creds"]
    assert r.stderr == ""


# -- bindings ---------------------------------------------------------------------------

def test_bindings_with_exchange_types(amqp_url, pika_channel, run):
    ch = pika_channel
    ch.exchange_declare("celery", "direct", durable=True)
    ch.exchange_declare("events", "topic", durable=True)
    ch.queue_declare("celery", durable=True)
    ch.queue_declare("audit", durable=True)
    ch.queue_bind("celery", "celery", "celery")
    ch.queue_bind("audit", "events", "task.#")
    rows = run("bindings", "-b", amqp_url, "-o", "json").json()
    assert {"exchange": "celery", "routing_key": "celery", "pattern": "", "queue": "celery",
            "exchange_type": "direct"} in rows
    assert {"exchange": "events", "routing_key": "task.#", "pattern": "task.#", "queue": "audit",
            "exchange_type": "topic"} in rows
    # every queue is bound to the default exchange by its name
    assert {"exchange": "", "routing_key": "audit", "pattern": "", "queue": "audit",
            "exchange_type": "direct"} in rows
    only = run("bindings", "-q", "audit", "-e", "events", "-b", amqp_url, "-o", "json").json()
    assert [b["routing_key"] for b in only] == ["task.#"]


def test_bindings_need_the_management_api(amqp_url, run):
    r = run("bindings", "-b", amqp_url, "--management-url", f"http://127.0.0.1:{free_port()}")
    assert r.exit_code == 69, r
    assert "only be listed by the management API" in r.stderr and "Traceback" not in r.stderr


# -- peek -------------------------------------------------------------------------------

def _task_bodies(n, prefix="m"):
    return [json.dumps([[i], {"tag": f"{prefix}{i}"}, {}]).encode() for i in range(n)]


def _publish_tasks(ch, queue, n, prefix="m", declare=True):
    import pika

    if declare:
        ch.queue_declare(queue, durable=True)
    for i, body in enumerate(_task_bodies(n, prefix)):
        ch.basic_publish("", queue, body, pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={"id": f"{prefix}{i}", "task": "t.add", "lang": "py"}))
    settled(ch, queue)


def test_peek_returns_everything_in_order_marked_redelivered(amqp_url, pika_channel, run):
    _publish_tasks(pika_channel, "work", 20)
    first = run("peek", "work", "-n", "5", "-b", amqp_url, "-o", "json")
    assert first.exit_code == 0, first
    msgs = first.json()
    assert [m["id"] for m in msgs] == [f"m{i}" for i in range(5)]
    assert [m["position"] for m in msgs] == list(range(5))
    assert [m["args"] for m in msgs] == [[i] for i in range(5)]
    assert all(m["redelivered"] is False for m in msgs)
    assert msgs[0]["properties"]["delivery_info"] == {"exchange": "", "routing_key": "work"}
    assert depth(pika_channel, "work") == 20
    second = run("peek", "work", "-n", "7", "-b", amqp_url, "-o", "json").json()
    assert [m["id"] for m in second] == [f"m{i}" for i in range(7)]
    assert [m["redelivered"] for m in second] == [True] * 5 + [False] * 2
    assert drain_ids(pika_channel, "work") == [f"m{i}" for i in range(20)]


def test_peek_all_and_empty_and_missing(amqp_url, pika_channel, run):
    _publish_tasks(pika_channel, "few", 3)
    pika_channel.queue_declare("empty", durable=True)
    every = run("peek", "few", "--all", "-b", amqp_url, "-o", "ndjson").ndjson()
    assert [m["id"] for m in every] == ["m0", "m1", "m2"]
    empty = run("peek", "empty", "-b", amqp_url)
    assert empty.exit_code == 0 and "queue 'empty' is empty" in empty.stderr
    missing = run("peek", "nothere", "-b", amqp_url)
    assert missing.exit_code == 66 and "no queue named 'nothere'" in missing.stderr
    assert depth(pika_channel, "few") == 3


def test_peek_undecodable_body_shows_error_and_raw(amqp_url, pika_channel, run):
    import pika

    pika_channel.queue_declare("bad", durable=True)
    pika_channel.basic_publish("", "bad", b"\x00not json", pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8", headers={"id": "x", "task": "t"}))
    _publish_tasks(pika_channel, "bad", 1)
    msgs = run("peek", "bad", "-b", amqp_url, "-o", "json").json()
    assert msgs[0]["error"] and msgs[0]["raw"] is not None and msgs[0]["id"] == "x"
    assert msgs[1]["error"] is None and msgs[1]["id"] == "m0"
    assert depth(pika_channel, "bad") == 2


def test_killed_peek_loses_nothing(amqp_url, pika_channel):
    """SIGKILL in the middle of a peek: the broker returns every unacked message."""
    pika_channel.queue_declare("cut", durable=True)
    _publish_tasks(pika_channel, "cut", 300)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", "peek", "cut", "-n", "300", "-b", amqp_url,
                             "-o", "ndjson"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["id"] == "m0"
        # the broker has handed this consumer messages it has not acked yet
        assert depth(pika_channel, "cut") < 300
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    wait_for(lambda: depth(pika_channel, "cut") == 300, timeout=10)
    ids = drain_ids(pika_channel, "cut")
    assert sorted(ids) == sorted(f"m{i}" for i in range(300)) and len(set(ids)) == 300


def test_connection_lost_mid_peek_is_one_error_and_loses_nothing(amqp_url, pika_channel):
    import socket

    from celerytool.brokers import open_broker
    from celerytool.errors import BrokerUnavailable
    from celerytool.urls import parse_url

    pika_channel.queue_declare("drop", durable=True)
    _publish_tasks(pika_channel, "drop", 50)
    # the peek wants what is ready when it starts: all 50 (publishes are asynchronous; once the
    # peek asked for 1 on a loaded RabbitMQ 4 and ended quietly after it)
    wait_for(lambda: depth(pika_channel, "drop") == 50, timeout=10)
    broker = open_broker(parse_url(amqp_url))
    messages = broker.peek("drop", 50)
    assert next(messages).id == "m0"
    sock = broker.connection._impl._transport._sock
    sock.shutdown(socket.SHUT_RDWR)
    # what pika had already read is still listed; then either the read fails or the return does
    try:
        rest = [m.id for m in messages]
    except BrokerUnavailable as exc:
        assert "lost while peeking at 'drop'" in exc.message
    else:
        assert rest == [f"m{i}" for i in range(1, 50)]
        assert "closed before the peeked messages were returned" in broker.warnings[0], broker.warnings
    broker.close()
    wait_for(lambda: depth(pika_channel, "drop") == 50, timeout=10)
    assert drain_ids(pika_channel, "drop") == [f"m{i}" for i in range(50)]


def test_peek_stops_when_a_competing_consumer_takes_messages(amqp_url, pika_channel):
    """Messages taken by another consumer mid-peek shorten the listing, with a warning."""
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    pika_channel.queue_declare("shared", durable=True)
    _publish_tasks(pika_channel, "shared", 4)
    broker = open_broker(parse_url(amqp_url))
    try:
        want = broker.depth("shared")
        for _ in range(2):  # a competing consumer takes two after the count was read
            pika_channel.basic_get("shared", auto_ack=True)
        from celerytool.brokers.amqp.peek import Peek

        peek = Peek(broker, "shared", want)
        got = [props.headers["id"] for _, props, _ in peek.deliveries()]
        peek.finish()
    finally:
        broker.close()
    assert (want, got) == (4, ["m2", "m3"])
    assert broker.warnings == ["queue 'shared': 2 message(s) were taken by another consumer during the peek"]
    assert depth(pika_channel, "shared") == 2


def test_peek_stream_queue_reads_from_the_first_offset(amqp_url, pika_channel, run):
    """Streams keep messages whatever consumers do: read from offset 'first', nothing returned."""
    pika_channel.queue_declare("log", durable=True, arguments={"x-queue-type": "stream"})
    _publish_tasks(pika_channel, "log", 3, declare=False)
    wait_for(lambda: depth(pika_channel, "log") == 3, timeout=10)
    r = run("peek", "log", "-b", amqp_url, "-o", "json")
    assert r.exit_code == 0, r
    assert [m["id"] for m in r.json()] == ["m0", "m1", "m2"]
    assert r.stderr == ""
    again = run("peek", "log", "-n", "2", "-b", amqp_url, "-o", "json").json()
    assert [m["id"] for m in again] == ["m0", "m1"]


def test_stopping_early_returns_the_rest_too(amqp_url, pika_channel):
    """A reader that stops after one message (`| head -1`): everything fetched goes back, in order."""
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    _publish_tasks(pika_channel, "early", 30)
    broker = open_broker(parse_url(amqp_url))
    messages = broker.peek("early", 30)
    assert next(messages).id == "m0"
    messages.close()
    assert depth(pika_channel, "early") == 30  # returned before the connection closes
    broker.close()
    assert broker.warnings == []
    assert drain_ids(pika_channel, "early") == [f"m{i}" for i in range(30)]


def test_queues_count_exactly_right_after_publishing(amqp_url, rabbit_vhost, pika_channel, run):
    """40 sends, then `queues` at once: the statistics sample still says 0; --exact (and the
    default for a vhost with few queues) counts by passive declare; --sampled says it is a sample."""
    pika_channel.queue_declare("burst", durable=True)
    wait_for(lambda: "messages_ready" in rabbit_vhost.api("GET", f"/queues/{rabbit_vhost.quoted}/burst"),
             timeout=20)  # sampled once
    publish_plain(pika_channel, "burst", [b"m"] * 40)
    sampled = run("queues", "--sampled", "-b", amqp_url)
    exact = run("queues", "--exact", "-b", amqp_url, "-o", "json")
    default = run("queues", "-b", amqp_url, "-o", "json")
    assert [(q["name"], q["messages"], q["counted"]) for q in exact.json()] == [("burst", 40, "exact")]
    assert [(q["messages"], q["counted"]) for q in default.json()] == [(40, "exact")]
    assert "last statistics sample" in sampled.stderr and "up to ~5 s old" in sampled.stderr, sampled
    assert "--exact" in sampled.stderr


def test_management_api_port_follows_the_amqp_port():
    """RabbitMQ pairs AMQP 5672 / 5671 with the API on 15672, another AMQP port P with P + 10000."""
    from celerytool.clients.management import ManagementAPI
    from celerytool.urls import parse_url

    def base(url):
        return ManagementAPI.for_broker(parse_url(url), None, 5.0).base

    assert base("amqp://u:p@rabbit//") == "http://rabbit:15672"
    assert base("amqps://u:p@rabbit//") == "http://rabbit:15672"
    assert base("amqp://u:p@rabbit:5673//") == "http://rabbit:15673"
    assert ManagementAPI.for_broker(parse_url("amqp://rabbit:5673//"), "http://api:9000", 5.0).base == "http://api:9000"


def test_the_test_nodes_are_the_versions_the_readme_names(rabbit_node):
    """The rabbit3 node is the machine's 3.x; rabbit4 is the RabbitMQ 4.0.x node the tests start."""
    major_minor = rabbit_node.version()[:2]
    assert major_minor[0] == (3 if rabbit_node.name == "rabbit3" else 4), major_minor
    if rabbit_node.name == "rabbit4":
        assert major_minor == (4, 0)
