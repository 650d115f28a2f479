"""Options that had no test (issue 17, item 4): ``send --args/--kwargs``, ``--backend-keyprefix``,
``metrics --scan/--no-scan``, ``top --interval``'s range, and the disk-full branch of
``export --remove`` (on /dev/full: exit non-zero, nothing leaves the queue)."""

from __future__ import annotations

import os
import uuid

import pytest

from conftest import make_app


def test_send_args_and_kwargs_as_json(run, redis_url, redis_client):
    r = run("send", "tasks.add", "--args", "[4, 5.5, \"x\"]", "--kwargs", '{"z": [1, 2]}', "-b", redis_url)
    assert r.exit_code == 0, r
    sent = r.stdout.strip()
    got = run("peek", "celery", "-b", redis_url, "-o", "json").json()
    assert [(m["id"], m["args"], m["kwargs"]) for m in got] == [(sent, [4, 5.5, "x"], {"z": [1, 2]})]


def test_send_args_that_are_not_a_json_array_are_a_usage_error(run, redis_url, redis_client):
    r = run("send", "tasks.add", "--args", '{"a": 1}', "-b", redis_url)
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r
    assert redis_client.llen("celery") == 0


def test_backend_keyprefix_finds_results_stored_under_the_apps_prefix(run, redis_url):
    app = make_app(redis_url, result_backend_transport_options={"global_keyprefix": "pfx_"})
    try:
        tid = str(uuid.uuid4())
        app.backend.store_result(tid, 42, "SUCCESS")
    finally:
        app.close()
    plain = run("result", tid, "-b", redis_url, "-o", "json")
    assert plain.exit_code != 0 and plain.json()[0]["status"] == "PENDING", plain
    found = run("result", tid, "-b", redis_url, "--backend-keyprefix", "pfx_", "-o", "json")
    assert found.exit_code == 0, found
    assert found.json()[0]["status"] == "SUCCESS" and found.json()[0]["result"] == 42


def test_metrics_scan_finds_an_unbound_queue_and_no_scan_does_not(run, redis_url, redis_client, celery_app):
    from kombu import Exchange, Queue

    # kombu remembers what it declared per connection, and the app's pool outlives the previous
    # test's flushed Redis: declare the binding here so 'celery' is bound whatever ran before
    with celery_app.connection_for_write() as conn:
        Queue("celery", Exchange("celery", type="direct"), routing_key="celery")(conn.default_channel).declare()
    celery_app.send_task("tasks.add", args=(1, 1))  # 'celery': bound
    redis_client.lpush("orphan", redis_client.lindex("celery", 0))  # a list no binding names
    scanned = run("metrics", "--scan", "-b", redis_url)
    unscanned = run("metrics", "--no-scan", "-b", redis_url)
    assert scanned.exit_code == unscanned.exit_code == 0, (scanned, unscanned)
    assert 'celery_queue_length{queue_name="orphan"} 1.0' in scanned.stdout
    assert 'celery_queue_length{queue_name="celery"} 1.0' in scanned.stdout
    assert '"orphan"' not in unscanned.stdout
    assert 'celery_queue_length{queue_name="celery"} 1.0' in unscanned.stdout


@pytest.mark.parametrize("value", ["10ms", "2m", "soon"])
def test_top_interval_outside_its_range_is_a_usage_error(run, redis_url, value):
    r = run("top", "--interval", value, "--once", "-b", redis_url)
    assert r.exit_code == 2 and "--interval" in r.stderr, r


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_export_remove_to_a_full_disk_removes_nothing(run, redis_url, redis_client, celery_app):
    for i in range(50):
        celery_app.send_task("tasks.add", args=(i, i))
    before = redis_client.lrange("celery", 0, -1)
    r = run("export", "celery", "--remove", "--file", "/dev/full", "--yes", "-b", redis_url)
    assert r.exit_code == 1 and "Traceback" not in r.stderr, r  # an operation failed (docs/exit-codes.md)
    assert "No space left on device" in r.stderr and "not removed" in r.stderr, r
    assert redis_client.lrange("celery", 0, -1) == before  # every message still there, in order
