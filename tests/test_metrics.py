"""metrics: one exposition of the broker's truth (Redis priorities, RabbitMQ exact counts,
unacked entries), checked with prometheus_client's parser and promtool; an unreachable broker."""

from __future__ import annotations

import time

import pytest

from metrics_helpers import parse, promtool_check, series, serve, total, value
from services import free_port, start_redis, wait_for


def test_redis_priorities_whole_and_by_bucket(run, redis_url, celery_app):
    sent = {0: 2, 3: 4, 6: 1, 9: 5}  # priority -> messages, into the 0/3/6/9 sub-lists
    for priority, n in sent.items():
        for _ in range(n):
            celery_app.send_task("t.prio", queue="prio", priority=priority)
    for _ in range(3):
        celery_app.send_task("t.plain", queue="plain")
    r = run("metrics", "-b", redis_url, "-Q", "nobody-binds-this", "--static-label", "env=test")
    assert r.exit_code == 0, r
    promtool_check(r.stdout)
    s = parse(r.stdout)
    assert value(s, "celery_broker_up", env="test") == 1
    assert value(s, "celery_queue_length", queue_name="prio", env="test") == sum(sent.values())
    assert value(s, "celery_queue_length", queue_name="plain", env="test") == 3
    assert value(s, "celery_queue_length", queue_name="nobody-binds-this", env="test") == 0
    for priority, n in sent.items():
        assert value(s, "celery_queue_length_by_priority", queue_name="prio", priority=str(priority),
                     env="test") == n
    assert value(s, "celery_queue_unacked", queue_name="prio", env="test") == 0
    assert not [q for q in series(s, "celery_queue_length") if q["queue_name"].endswith("pidbox")]


def test_prefix_and_openmetrics(run, redis_url, celery_app):
    celery_app.send_task("t.x", queue="q1")
    r = run("metrics", "-b", redis_url, "--prefix", "acme_", "--openmetrics")
    assert r.exit_code == 0, r
    assert r.stdout.rstrip().endswith("# EOF")
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(r.stdout)}
    assert {"acme_broker_up", "acme_queue_length"} <= names
    assert run("metrics", "-b", redis_url, "--prefix", "9bad").exit_code == 2
    assert run("metrics", "-b", redis_url, "--static-label", "queue_name=x").exit_code == 2
    assert run("metrics", "-b", redis_url, "--buckets", "1,x").exit_code == 2


def test_redis_unacked_entries_by_queue(run, redis_url, celery_app):
    """A kombu consumer holding two messages without acking: kombu's unacked hash has them."""
    from kombu import Connection

    for _ in range(5):
        celery_app.send_task("t.held", queue="held")
    with Connection(redis_url) as conn:
        q = conn.SimpleQueue("held")
        held = [q.get(timeout=5) for _ in range(2)]
        r = run("metrics", "-b", redis_url)
        s = parse(r.stdout)
        assert value(s, "celery_queue_unacked", queue_name="held") == 2
        assert value(s, "celery_queue_length", queue_name="held") == 3
        for m in held:
            m.ack()
        q.close()


def test_unreachable_broker_prints_broker_up_0_and_exits_69(run):
    port = free_port()
    r = run("metrics", "-b", f"redis://127.0.0.1:{port}/0")
    assert r.exit_code == 69
    assert value(parse(r.stdout), "celery_broker_up") == 0
    assert "Traceback" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith("celerytool: error")


def test_rabbitmq_exact_counts_and_unacked(run, amqp_url, amqp_celery_app, pika_channel):
    for _ in range(7):
        amqp_celery_app.send_task("t.r", queue="rq")
    wait_for(lambda: pika_channel.queue_declare("rq", passive=True).method.message_count == 7)
    got = [pika_channel.basic_get("rq", auto_ack=False) for _ in range(2)]
    assert all(method is not None for method, _, _ in got)

    def scraped():
        r = run("metrics", "-b", amqp_url, "--exact")
        assert r.exit_code == 0, r
        s = parse(r.stdout)
        # unacked comes from the management API's statistics sample (every 5 s): wait for it
        return s if value(s, "celery_queue_unacked", queue_name="rq") == 2 else None

    s = wait_for(scraped, timeout=30, every=1)
    promtool_check(run("metrics", "-b", amqp_url).stdout)
    assert value(s, "celery_queue_length", queue_name="rq") == 5
    assert value(s, "celery_queue_consumers", queue_name="rq") == 0


def test_serve_survives_an_unreachable_broker_and_recovers(tmp_path):
    port = free_port()
    served = serve(f"redis://127.0.0.1:{port}/0", tmp_path, "-t", "5m")
    server = None
    try:
        status, text = served.get("/health")
        assert status == 503 and "cannot reach" in text
        s = served.scrape()
        assert value(s, "celery_broker_up") == 0
        server = start_redis(tmp_path / "late", port=port)
        wait_for(lambda: served.get("/health")[0] == 200, timeout=30, every=0.5)
        assert value(served.scrape(), "celery_broker_up") == 1
        assert served.get("/nothing")[0] == 404
        assert served.proc.poll() is None
    finally:
        served.stop()
        if server is not None:
            server.stop()
    assert served.proc.returncode == 0, served.log.read_text()[-2000:]


def test_oldest_message_age_from_rabbitmqs_head_message_timestamp(run, amqp_url, pika_channel):
    """Where the first message carries an AMQP timestamp (a publisher that sets it; Celery does
    not), its age is a gauge; a queue whose messages have none has no series."""
    import pika

    sent = int(time.time()) - 120  # published "two minutes ago"
    for name, props in (("stamped", pika.BasicProperties(timestamp=sent)), ("plain", pika.BasicProperties())):
        pika_channel.queue_declare(name)
        pika_channel.basic_publish("", name, b"{}", props)

    def scraped():
        r = run("metrics", "-b", amqp_url)
        assert r.exit_code == 0, r
        s = parse(r.stdout)  # (from the management API's sample: wait for it)
        return s if value(s, "celery_queue_oldest_message_age_seconds", queue_name="stamped") is not None else None

    s = wait_for(scraped, timeout=30, every=1)
    age = value(s, "celery_queue_oldest_message_age_seconds", queue_name="stamped")
    assert 119 <= age <= 160, age
    assert value(s, "celery_queue_oldest_message_age_seconds", queue_name="plain") is None


@pytest.mark.parametrize("bad", [["--serve", "host:notaport"], ["--serve", "70000"],
                                 ["--worker-label", "pid"], ["--max-tasks", "0"]])
def test_bad_options_are_usage_errors(run, bad):
    r = run("metrics", "-b", "redis://127.0.0.1:1/0", *bad)
    assert r.exit_code == 2, r


def test_totals_helper_sums_labels():
    s = parse('# TYPE a counter\na_total{x="1",y="2"} 3\na_total{x="1",y="3"} 4\n')
    assert total(s, "a_total", x="1") == 7


def test_backend_results_stored_and_without_ttl(run, redis_url):
    """Opt-in: results written by Celery's own Redis backend, two with result_expires (a TTL),
    one with result_expires=None (none)."""
    from conftest import make_app

    with_ttl = make_app(redis_url, result_expires=3600)
    without = make_app(redis_url, result_expires=None)
    for i in range(2):
        with_ttl.backend.store_result(f"ttl-{i}", i, "SUCCESS")
    without.backend.store_result("forever", 1, "SUCCESS")
    r = run("metrics", "-b", redis_url)
    assert not [k for k in parse(r.stdout) if k[0].startswith("celery_results")]
    r = run("metrics", "-b", redis_url, "--backend", redis_url)
    assert r.exit_code == 0, r
    promtool_check(r.stdout)
    s = parse(r.stdout)
    assert value(s, "celery_results_backend_up") == 1
    assert value(s, "celery_results_stored") == 3
    assert value(s, "celery_results_without_ttl") == 1
    assert value(s, "celery_results_sampled") == 0
    from celerytool.backends import open_backend
    from celerytool.metrics.results import redis_counts
    from celerytool.urls import parse_url

    backend = open_backend(parse_url(redis_url))
    stored, _, sampled = redis_counts(backend, exact_max=1, sample=500)
    backend.close()
    assert sampled and stored == 3  # estimated from RANDOMKEY samples: every key is a result
    with_ttl.close()
    without.close()
