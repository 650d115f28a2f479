"""RabbitMQ with real Celery: what it produced, peeked; what AmqpBroker published, run by a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from amqp_helpers import declared, drain, drain_ids, wait_for

from celerytool.errors import BrokerUnavailable

from conftest import make_app

ROOT = Path(__file__).resolve().parent.parent
SERIALIZERS = ["json", "pickle", "msgpack", "yaml"]
COMPRESSIONS = [None, "gzip", "bzip2", "lzma", "brotli", "zstd"]
COMPRESSION_HEADER = {"gzip": "application/x-gzip", "bzip2": "application/x-bz2", "lzma": "application/x-lzma",
                      "brotli": "application/x-brotli", "zstd": "application/zstd"}


def peek_json(run, url, queue, *extra):
    r = run("peek", queue, "-b", url, "-o", "json", *extra)
    assert r.exit_code == 0, r
    return r.json()


@pytest.mark.parametrize("protocol", [1, 2])
def test_serializers_compressions_protocols(protocol, amqp_url, pika_channel, run):
    app = make_app(amqp_url, backend="disabled://", task_protocol=protocol)
    sent = []
    try:
        for ser in SERIALIZERS:
            for comp in COMPRESSIONS:
                r = app.send_task("tasks.work", args=(len(sent), f"{ser}/{comp}"), kwargs={"ratio": 0.5},
                                  queue="matrix", serializer=ser, compression=comp)
                sent.append((r.id, ser, comp))
    finally:
        app.close()
    msgs = peek_json(run, amqp_url, "matrix", "--all")
    assert len(msgs) == len(sent)
    for m, (task_id, ser, comp) in zip(msgs, sent, strict=True):
        assert m["error"] is None, m
        assert (m["id"], m["task"], m["protocol"]) == (task_id, "tasks.work", protocol)
        assert m["args"] == [sent.index((task_id, ser, comp)), f"{ser}/{comp}"]
        assert m["kwargs"] == {"ratio": 0.5}
        assert m["compression"] == COMPRESSION_HEADER.get(comp)
        assert m["redelivered"] is False
    # the queue still holds the same messages, in the same order
    bodies = [body for body, _ in drain(pika_channel, "matrix")]
    assert [m["size"] for m in msgs] == [len(b) for b in bodies]


def test_priority_queue_order(amqp_url, pika_channel, run):
    """x-max-priority queue: higher priority first, FIFO within one priority (RabbitMQ's rule)."""
    app = make_app(amqp_url, backend="disabled://", task_queue_max_priority=10)
    priorities = [0, 5, 9, 5, 1, 9, 0, 3]
    try:
        ids = [app.send_task("tasks.p", args=(i,), queue="prio", priority=p).id
               for i, p in enumerate(priorities)]
    finally:
        app.close()
    expected = [ids[i] for i in sorted(range(len(ids)), key=lambda i: (-priorities[i], i))]
    # send_task does not wait for confirms: let every message reach the queue before reading it
    deadline = time.monotonic() + 10
    while pika_channel.queue_declare("prio", passive=True).method.message_count < len(ids):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    msgs = peek_json(run, amqp_url, "prio", "-n", "100")
    assert [m["id"] for m in msgs] == expected
    assert [m["priority"] for m in msgs] == sorted(priorities, reverse=True)
    queues = {q["name"]: q for q in run("queues", "-b", amqp_url, "-o", "json").json()}
    assert declared(queues["prio"]["arguments"]) == {"x-max-priority": 10}
    again = peek_json(run, amqp_url, "prio", "-n", "100")
    assert [m["id"] for m in again] == expected
    assert drain_ids(pika_channel, "prio") == expected


def test_quorum_queue(amqp_url, pika_channel, run):
    app = make_app(amqp_url, backend="disabled://", task_create_missing_queue_type="quorum")
    try:
        ids = [app.send_task("tasks.q", args=(i,), queue="qq").id for i in range(6)]
    finally:
        app.close()
    msgs = peek_json(run, amqp_url, "qq", "-n", "4")
    assert [m["id"] for m in msgs] == ids[:4]
    assert [m["args"] for m in msgs] == [[i] for i in range(4)]
    queues = {q["name"]: q for q in run("queues", "-b", amqp_url, "-o", "json").json()}
    assert queues["qq"]["type"] == "quorum"
    after = drain(pika_channel, "qq")
    # everything is still there; RabbitMQ counts the returned ones as delivered once
    assert sorted(p.headers["id"] for _, p in after) == sorted(ids)
    assert len(after) == 6


def test_same_output_as_on_redis(amqp_url, redis_url, run):
    """One task sent by Celery to each broker peeks the same, transport details aside."""
    out = {}
    for url in (redis_url, amqp_url):
        app = make_app(url, backend="disabled://")
        try:
            app.send_task("tasks.same", args=(1, "two", [3.5]), kwargs={"k": None}, queue="celery",
                          task_id="7f1e2d3c-0000-4000-8000-000000000001", reply_to="reply-here",
                          expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc), priority=3,
                          time_limit=30.5)
        finally:
            app.close()
        [m] = peek_json(run, url, "celery")
        out[url] = m
    redis_m, amqp_m = out[redis_url], out[amqp_url]
    for field in ("size", "redelivered", "raw"):
        redis_m.pop(field, None)
        amqp_m.pop(field, None)
    redis_props = redis_m.pop("properties")
    amqp_props = amqp_m.pop("properties")
    # the AMQP expiration property is milliseconds from the moment of sending
    assert abs(int(amqp_props.pop("expiration")) - int(redis_props.pop("expiration"))) < 60_000
    assert amqp_props == {k: v for k, v in redis_props.items() if k not in ("body_encoding", "delivery_tag")}
    assert amqp_m == redis_m
    assert amqp_m["headers"]["timelimit"] == [30.5, None]


# -- publish ------------------------------------------------------------------------------

def _outgoing(app, name, args, queue, serializer="json", compression=None, priority=None, exchange=""):
    """A message built by Celery itself (create_task_message), serialized by kombu."""
    from kombu.compression import compress
    from kombu.serialization import dumps
    from kombu.utils.uuid import uuid

    from celerytool.model import OutgoingMessage

    headers, properties, body, _ = app.amqp.create_task_message(uuid(), name, args, {})
    content_type, content_encoding, data = dumps(body, serializer=serializer)
    headers = dict(headers)
    if compression:
        data, headers["compression"] = compress(data, compression)
    properties = {**properties, "delivery_mode": 2}
    if priority is not None:
        properties["priority"] = priority
    return OutgoingMessage(body=data if isinstance(data, bytes) else data.encode(), content_type=content_type,
                           content_encoding=content_encoding, headers=headers, properties=properties,
                           exchange=exchange, routing_key=queue)


def _broker(url):
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    return open_broker(parse_url(url))


def test_publish_routes_confirms_and_refuses_unroutable(amqp_url, pika_channel, run):
    from celerytool.errors import CeleryToolError, ExitCode

    app = make_app(amqp_url, backend="disabled://")
    pika_channel.queue_declare("out", durable=True, arguments={"x-max-priority": 9})
    pika_channel.exchange_declare("celery", "direct", durable=True)
    pika_channel.queue_bind("out", "celery", "to-out")
    first = _outgoing(app, "tasks.pub", (1,), "out", priority=7)
    via_exchange = _outgoing(app, "tasks.pub", (2,), "to-out", exchange="celery")
    lost = _outgoing(app, "tasks.pub", (3,), "nowhere")
    broker = _broker(amqp_url)
    try:
        assert broker.publish([first, via_exchange]) == 2
        with pytest.raises(CeleryToolError) as err:
            broker.publish([_outgoing(app, "tasks.pub", (4,), "out"), lost])
        assert err.value.exit_code == ExitCode.FAILURE
        assert "unroutable" in err.value.message and "'nowhere'" in err.value.message
        assert "1 sent before it" in err.value.message
        with pytest.raises(CeleryToolError) as err:
            broker.publish([_outgoing(app, "tasks.pub", (5,), "x", exchange="no-such-exchange")])
        assert err.value.exit_code == ExitCode.FAILURE and "no exchange 'no-such-exchange'" in err.value.message
    finally:
        broker.close()
        app.close()
    msgs = peek_json(run, amqp_url, "out", "-n", "10")
    assert [m["args"] for m in msgs] == [[1], [2], [4]]
    assert msgs[0]["priority"] == 7 and msgs[0]["properties"]["priority"] == 7
    assert msgs[1]["properties"]["delivery_info"] == {"exchange": "celery", "routing_key": "to-out"}
    assert msgs[0]["id"] == first.headers["id"] and msgs[0]["properties"]["delivery_mode"] == 2
    got = drain(pika_channel, "out")
    assert [body for body, _ in got][0] == first.body
    assert got[0][1].headers["timelimit"] == [None, None]


WORKER_MODULE = textwrap.dedent("""
    import os
    from celery import Celery

    app = Celery("wtasks", broker=os.environ["T_BROKER"], backend=os.environ["T_BACKEND"])
    app.conf.update(accept_content=["json", "pickle", "msgpack", "yaml"],
                    result_accept_content=["json", "pickle", "msgpack", "yaml"],
                    task_queue_max_priority=9, broker_connection_retry_on_startup=True)

    @app.task(name="wtasks.add")
    def add(x, y):
        return x + y
""")


def test_worker_runs_what_publish_put_there(amqp_url, redis_url, pika_channel, tmp_path, run):
    """A real celery worker on amqp runs what AmqpBroker.publish and `celerytool send` sent."""
    (tmp_path / "wtasks.py").write_text(WORKER_MODULE)
    env = {**os.environ, "T_BROKER": amqp_url, "T_BACKEND": redis_url, "C_FORCE_ROOT": "1",
           "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "wtasks", "worker", "-Q", "wq", "--pool", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    app = make_app(amqp_url, backend=redis_url)
    try:
        # a passive declare of a missing queue closes the channel: poll on fresh connections
        wait_for(lambda: _consumers(amqp_url, "wq"), timeout=40)
        cases = [("json", None, 1, 2), ("pickle", "gzip", 10, 20), ("msgpack", "zstd", 100, 200),
                 ("yaml", None, 1000, 2000)]
        messages = [_outgoing(app, "wtasks.add", (x, y), "wq", serializer=s, compression=c, priority=5)
                    for s, c, x, y in cases]
        broker = _broker(amqp_url)
        try:
            assert broker.publish(messages) == len(messages)
        finally:
            broker.close()
        results = [app.AsyncResult(m.headers["id"]).get(timeout=30) for m in messages]
        assert results == [x + y for _, _, x, y in cases]
        ids = []
        for extra in ([], ["--serializer", "pickle", "--priority", "9"], ["--compression", "brotli", "--protocol", "1"]):
            r = run("send", "wtasks.add", "5", "6", "-Q", "wq", "-b", amqp_url, *extra)
            assert r.exit_code == 0, r
            ids.append(r.stdout.strip())
        assert [app.AsyncResult(i).get(timeout=30) for i in ids] == [11, 11, 11]
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
        worker.stderr.close()
        app.close()


def _consumers(url, queue):
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        if conn.is_open:
            conn.close()


def test_send_unroutable_exits_1(amqp_url, run):
    r = run("send", "tasks.add", "1", "2", "-Q", "nobody-listens", "-b", amqp_url, "--no-retry")
    assert r.exit_code == 1, r
    assert "unroutable" in r.stderr and "'nobody-listens'" in r.stderr and "Traceback" not in r.stderr


def test_publish_again_after_a_failure_sends_nothing_twice(amqp_url, pika_channel):
    """The same messages published again (a retry) skip those already confirmed."""
    import socket

    from celerytool.errors import CeleryToolError

    app = make_app(amqp_url, backend="disabled://")
    pika_channel.queue_declare("once", durable=True)
    first = _outgoing(app, "tasks.once", (1,), "once")
    second = _outgoing(app, "tasks.once", (2,), "once", exchange="late")
    broker = _broker(amqp_url)
    try:
        with pytest.raises(CeleryToolError, match="no exchange 'late'"):
            broker.publish([first, second])
        pika_channel.exchange_declare("late", "direct")
        pika_channel.queue_bind("once", "late", "once")
        assert broker.publish([first, second]) == 2
        # a dropped connection between calls: the next publish reconnects
        broker.connection._impl._transport._sock.shutdown(socket.SHUT_RDWR)
        third = _outgoing(app, "tasks.once", (3,), "once")
        with pytest.raises(BrokerUnavailable):
            broker.publish([third])
        assert broker.publish([third]) == 1
    finally:
        broker.close()
        app.close()
    assert [b for b, _ in drain(pika_channel, "once")] == [first.body, second.body, third.body]
