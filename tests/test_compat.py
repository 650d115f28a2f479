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
