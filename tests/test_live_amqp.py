"""workers, inspect, events, revoke, top on RabbitMQ against a real worker, in a vhost of our own.

Whom to expect comes from the management API (the worker's *.celery.pidbox
queue), and every command must leave the vhost's queue list as it was: the
reply and event queues are exclusive, gone with our connection.
"""

from __future__ import annotations

import time
import uuid

import pytest
from timing import within

from conftest import RABBIT_NODE_IDS, make_app, rabbit_node_named
from services import new_vhost, start_redis, wait_for
from workers import start_worker


@pytest.fixture(scope="module", params=RABBIT_NODE_IDS)
def rabbit(request, tmp_path_factory):
    vhost = new_vhost("celerytool-live", node=rabbit_node_named(request.param))
    server = start_redis(tmp_path_factory.mktemp("live-amqp-redis"))
    worker = None
    try:
        worker = start_worker(vhost.url(), tmp_path_factory.mktemp("live-amqp-worker"), queues="qa",
                              pool="threads", concurrency=2, events=True, backend_url=server.url(0),
                              prefix="wr")
        app = make_app(vhost.url(), backend=server.url(0))
        yield {"url": vhost.url(), "vhost": vhost, "worker": worker, "app": app}
        app.close()
    finally:
        if worker is not None:
            worker.stop(wait=5)
        server.stop()
        vhost.delete()


def queue_names(rabbit):
    return sorted(rabbit["vhost"].queue_names())


@pytest.mark.parametrize("args", [
    ("workers", "-o", "json"),
    ("inspect", "active", "-o", "json"),
    ("inspect", "registered", "-o", "json"),
    ("top", "--once", "-o", "json"),
    ("events", "--timeout", "1", "-o", "ndjson"),
    ("revoke", "no-such-task", "--yes", "-o", "json"),
])
def test_commands_leave_the_queue_list_as_it_was(run, rabbit, args):
    before = queue_names(rabbit)
    assert f"{rabbit['worker'].name}.celery.pidbox" in before
    start = time.monotonic()
    r = run(*args, "-b", rabbit["url"])
    assert r.exit_code in (0, 124), r
    if args[0] == "workers":
        rows = r.json()
        assert [(w["name"], w["status"], w["queues"], w["concurrency"]) for w in rows] == [
            (rabbit["worker"].name, "online", ["qa"], 2)]
        assert time.monotonic() - start < within(2.5), "the management API said whom to expect"
    if args[0] == "revoke":
        assert r.json()["acknowledged_by"] == [rabbit["worker"].name]
    # the management API lists a deleted queue for a moment at most
    wait_for(lambda: queue_names(rabbit) == before, timeout=10)


def test_inspect_active_and_events_on_rabbitmq(run, rabbit):
    app = rabbit["app"]
    task_id = f"slow-{uuid.uuid4()}"
    app.send_task("worker_tasks.slow", args=[3], queue="qa", task_id=task_id)

    def active():
        rows = run("inspect", "active", "-b", rabbit["url"], "-o", "json").json()
        return [t for t in rows if t["id"] == task_id]

    rows = wait_for(active, timeout=15)
    assert rows[0]["args"] == [3] and rows[0]["worker"] == rabbit["worker"].name
    r = run("events", "-b", rabbit["url"], "--type", "task-succeeded", "-n", "1", "--timeout", "15",
            "-o", "ndjson")
    assert r.exit_code == 0, r
    assert r.ndjson()[0]["uuid"] == task_id


def test_a_worker_on_a_quorum_queue_of_rabbitmq_4(run, rabbit4, tmp_path):
    """Celery 5.7 declares its queue as a quorum queue (task_default_queue_type = "quorum") on
    RabbitMQ 4.0: it runs what `send` publishes, and `workers` / `inspect` answer through it."""
    import celery

    assert celery.VERSION[:2] >= (5, 7), celery.__version__
    vhost = new_vhost("celerytool-quorum", node=rabbit4)
    server = start_redis(tmp_path / "redis")
    worker = None
    try:
        worker = start_worker(vhost.url(), tmp_path / "worker", queues="qq", env={"CT_QUEUE_TYPE": "quorum", "CT_DEFAULT_QUEUE": "qq"},
                              backend_url=server.url(0), prefix="wq")
        url = vhost.url()
        queues = {q["name"]: q for q in run("queues", "-b", url, "-o", "json").json()}
        assert queues["qq"]["type"] == "quorum" and queues["qq"]["consumers"] == 1, queues
        r = run("send", "worker_tasks.add", "20", "22", "-q", "qq", "-b", url, "--backend", server.url(0),
                "--wait", "--timeout", "30", "-o", "json")
        assert r.exit_code == 0, r
        assert r.json()["status"] == "SUCCESS" and r.json()["result"] == 42, r.json()
        rows = run("workers", "-b", url, "-o", "json").json()
        assert [(w["name"], w["status"], w["queues"]) for w in rows] == [(worker.name, "online", ["qq"])]
        registered = run("inspect", "registered", "-b", url, "-o", "json")
        assert registered.exit_code == 0, registered
        assert (worker.name, "worker_tasks.add") in {(row["worker"], row["task"]) for row in registered.json()}
        # nothing left behind: the task ran once and was acked
        wait_for(lambda: {q["name"]: q for q in run("queues", "-b", url, "-o", "json").json()}["qq"]["messages"] == 0)
    finally:
        if worker is not None:
            worker.stop(wait=5)
        server.stop()
        vhost.delete()


def test_control_over_amqps_reads_the_tls_options_of_the_url(run, rabbit, tmp_path):
    """amqps:// with the URL's own CA and name to verify, in front of the worker's RabbitMQ:
    the control commands (kombu's connection) verify as peek (pika's) does; a wrong name or no
    CA fails the handshake (69); a missing CA file is a usage error (2)."""
    from tlsfront import NAME, TLSFront, make_certs

    make_certs(tmp_path / "certs")
    node = rabbit["vhost"].node
    front = TLSFront(tmp_path / "certs", (node.host, node.amqp_port))
    try:
        base = f"amqps://guest:guest@127.0.0.1:{front.port}/{rabbit['vhost'].quoted}"
        good = f"{base}?ssl_ca_certs={tmp_path / 'certs' / 'ca.pem'}&server_hostname={NAME}"
        r = run("workers", "-b", good, "-o", "json")
        assert r.exit_code == 0, r
        assert [w["name"] for w in r.json()] == [rabbit["worker"].name]
        r = run("inspect", "active_queues", "-b", good, "-o", "json")  # Celery's spelling too
        assert r.exit_code == 0, r
        assert rabbit["worker"].name in r.stdout and '"qa"' in r.stdout
        assert run("peek", "qa", "-b", good, "-o", "json").exit_code == 0
        for bad in (f"{base}?ssl_ca_certs={tmp_path / 'certs' / 'ca.pem'}",  # verifies 127.0.0.1: not named
                    base):  # the system's CAs: ours is not among them
            r = run("workers", "-b", bad, "-o", "json")
            assert r.exit_code == 69, r
            assert "certificate" in r.stderr.lower() or "handshake" in r.stderr.lower() or "ssl" in r.stderr.lower()
        r = run("workers", "-b", f"{base}?ssl_ca_certs={tmp_path / 'nope.pem'}")
        assert r.exit_code == 2, r
    finally:
        front.close()
