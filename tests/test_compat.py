"""Messages other Celery clients can read, and messages from other clients celerytool can read."""

from __future__ import annotations

from amqp_helpers import depth, drain, wait_for

from conftest import make_app


def celery_reference_properties(amqp_url, pika_channel, queue):
    """What Celery's own send_task puts on RabbitMQ for a protocol-1 task (headers: an empty table)."""
    app = make_app(amqp_url, backend="disabled://", task_protocol=1)
    try:
        app.send_task("tasks.add", (1, 2), queue=queue)
    finally:
        app.close()
    wait_for(lambda: depth(pika_channel, queue) == 1)  # published on another connection, unconfirmed
    [(_, props)] = drain(pika_channel, queue)
    return props


def test_publishing_to_rabbitmq_always_sets_the_headers_table(amqp_url, redis_url, redis_client, pika_channel,
                                                               run, tmp_path):
    pika_channel.queue_declare("celery", durable=True)
    reference = celery_reference_properties(amqp_url, pika_channel, "celery")
    assert reference.headers == {}  # Celery (kombu + py-amqp) sends the property, empty

    r = run("send", "tasks.add", "1", "2", "--protocol", "1", "-b", amqp_url)
    assert r.exit_code == 0, r
    [(_, props)] = drain(pika_channel, "celery")
    assert props.headers == reference.headers

    # a protocol-1 message (headers {}) leaving Redis for RabbitMQ: import, then move --to-broker
    redis_app = make_app(redis_url, task_protocol=1)
    redis_app.send_task("tasks.add", (3, 4))
    redis_app.close()
    out = tmp_path / "v1.ndjson"
    assert run("export", "celery", "-b", redis_url, "--file", out).exit_code == 0
    r = run("import", out, "celery", "-b", amqp_url, "-y")
    assert r.exit_code == 0, r
    [(_, props)] = drain(pika_channel, "celery")
    assert props.headers == {}
    r = run("move", "celery", "celery", "--to-broker", amqp_url, "-b", redis_url, "-y")
    assert r.exit_code == 0, r
    [(_, props)] = drain(pika_channel, "celery")
    assert props.headers == {}
    assert redis_client.llen("celery") == 0


def celery_ts_envelope(task_id: str, task: str, args: list) -> bytes:
    """A task as celery-ts stores it on Redis: compressed JSON, base64, labelled content-encoding base64."""
    import base64
    import json
    import zlib

    body = json.dumps([args, {}, {"callbacks": None, "chain": None, "chord": None, "errbacks": None}])
    headers = {"argsrepr": json.dumps(args), "eta": None, "expires": None, "group": None, "id": task_id,
               "kwargsrepr": "{}", "lang": "py", "origin": "4242@node", "parent_id": None, "retries": 0,
               "root_id": task_id, "shadow": None, "task": task, "timelimit": [None, None],
               "compression": "application/x-gzip"}
    props = {"body_encoding": "base64", "correlation_id": task_id,
             "delivery_info": {"exchange": "", "routing_key": "celery"}, "delivery_mode": 2,
             "delivery_tag": "celery", "priority": 0, "reply_to": "11111111-2222-3333-4444-555555555555"}
    return json.dumps({"body": base64.b64encode(zlib.compress(body.encode())).decode(),
                       "content-encoding": "base64", "content-type": "application/json",
                       "headers": headers, "properties": props}).encode()


def test_celery_ts_body_is_decoded(run, redis_url, redis_client):
    redis_client.lpush("celery", celery_ts_envelope("ts-1", "tasks.add", [2, 3]))
    r = run("peek", "celery", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    [m] = r.json()
    assert m["error"] is None, m
    assert (m["id"], m["task"], m["args"], m["compression"]) == ("ts-1", "tasks.add", [2, 3], "application/x-gzip")


def test_text_plain_body_of_a_plain_kombu_message_is_shown(run, redis_url):
    from kombu import Connection

    with Connection(redis_url) as conn:
        conn.SimpleQueue("plain").put("hello, kombu")  # a str body: kombu labels it text/plain
    r = run("peek", "plain", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    [m] = r.json()
    assert m["content_type"] == "text/plain"
    assert m["body"] == "hello, kombu"
    assert "unknown content type" not in (m["error"] or "")


def test_a_body_that_is_not_a_task_tuple_is_shown_as_body(run, redis_url, redis_client, tmp_path):
    import base64
    import json
    import os
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    env = {"body": base64.b64encode(pickle.dumps(Evil(), protocol=4)).decode(), "content-encoding": "binary",
           "content-type": "application/x-python-serialize", "headers": {"task": "tasks.x", "id": "evil-1"},
           "properties": {"body_encoding": "base64", "delivery_tag": "t", "priority": 0,
                          "delivery_info": {"exchange": "", "routing_key": "celery"}}}
    redis_client.lpush("celery", json.dumps(env))
    r = run("peek", "celery", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    [m] = r.json()
    assert m["id"] == "evil-1" and "not [args, kwargs, embed]" in m["error"]
    assert m["body"]["__type__"] == "pickle"
    assert m["body"]["__value__"]["global"] in ("posix.system", "os.system", "nt.system")
    assert m["body"]["__value__"]["args"] == [f"touch {marker}"]
    assert not marker.exists()


def test_changing_a_stream_queue_is_refused(run, amqp_url, pika_channel, tmp_path):
    import pika

    pika_channel.queue_declare("events", durable=True, arguments={"x-queue-type": "stream"})
    pika_channel.queue_declare("elsewhere", durable=True)
    for i in range(3):
        pika_channel.basic_publish("", "events", b'{"n": %d}' % i, pika.BasicProperties(delivery_mode=2))
    for command in (["purge", "events", "--where", "true", "-y"], ["purge", "events", "-y"],
                    ["move", "events", "elsewhere", "-y"],
                    ["export", "events", "--remove", "--file", tmp_path / "s.ndjson", "-y"]):
        r = run(*command, "-b", amqp_url)
        assert r.exit_code == 2, r
        assert "is a stream" in r.stderr and "Traceback" not in r.stderr
    bodies = []  # read the stream from its first offset: nothing was appended
    pika_channel.basic_qos(prefetch_count=100)
    pika_channel.basic_consume("events", lambda ch, method, props, body: bodies.append(body),
                               arguments={"x-stream-offset": "first"})
    pika_channel.connection.process_data_events(time_limit=1)
    assert bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert depth(pika_channel, "elsewhere") == 0


def test_a_rabbitmq_export_and_a_celery_ts_message_run_on_a_redis_worker(run, amqp_url, redis_url, redis_client,
                                                                        tmp_path):
    from workers import start_worker

    producer = make_app(amqp_url, backend="disabled://")
    try:
        sent = [producer.send_task("worker_tasks.add", (2, 3), queue="celery").id,
                producer.send_task("worker_tasks.add", (20, 30), queue="celery", serializer="pickle",
                                   compression="zlib", priority=5, time_limit=30.5).id]
    finally:
        producer.close()
    out = tmp_path / "from-rabbit.ndjson"
    r = run("export", "celery", "-b", amqp_url, "--file", out)
    assert r.exit_code == 0, r
    r = run("import", out, "celery", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["imported"] == 2
    redis_client.lpush("celery", celery_ts_envelope("ts-run-1", "worker_tasks.add", [200, 300]))
    worker = start_worker(redis_url, tmp_path / "worker")
    results = make_app(redis_url)
    try:
        got = [results.AsyncResult(i).get(timeout=30) for i in [*sent, "ts-run-1"]]
    finally:
        worker.stop()
        results.close()
    assert got == [5, 50, 500], worker.log_tail()
