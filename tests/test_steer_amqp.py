"""rate-limit, time-limit, shutdown on RabbitMQ: two real workers (prefork --autoscale, solo) in a
vhost of our own; the vhost's queue list is as it was after each command (no reply queue left)."""

from __future__ import annotations

import pytest

from services import new_vhost, start_redis
from workers import start_worker


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory):
    vhost = new_vhost("celerytool-steer")  # starts (or installs) RabbitMQ when it does not answer
    server = start_redis(tmp_path_factory.mktemp("steer-amqp-redis"))
    tmp = tmp_path_factory.mktemp("steer-amqp-workers")
    started = []
    try:
        started.append(start_worker(vhost.url(), tmp / "a", queues="q1,q2", pool="prefork", prefix="w1",
                                    backend_url=server.url(0), extra=("--autoscale", "4,2")))
        started.append(start_worker(vhost.url(), tmp / "b", queues="q1,q2", pool="solo", prefix="w2",
                                    backend_url=server.url(0)))
        yield {"url": vhost.url(), "vhost": vhost, "a": started[0], "b": started[1], "server": server}
    finally:
        for w in started:
            w.stop(wait=5)
        server.stop()
        vhost.delete()


def test_unknown_task_exits_1_and_time_limit_reaches_only_the_addressed_worker(run, rabbit):
    url, a, b = rabbit["url"], rabbit["a"].name, rabbit["b"].name
    before = sorted(rabbit["vhost"].queue_names())
    r = run("rate-limit", "unknown.task", "1/s", "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 1, r
    assert {(row["worker"], row["error"]) for row in r.json()} == {(a, "unknown task"), (b, "unknown task")}
    r = run("time-limit", "worker_tasks.mul", "--soft", "1", "-b", url, "-d", b, "--yes")
    assert r.exit_code == 0, r
    r = run("inspect", "registered", "-b", url, "-o", "json")
    info = {(row["worker"], row["task"]): row["info"] or "" for row in r.json()}
    assert "soft_time_limit=1.0" in info[(b, "worker_tasks.mul")]
    assert "soft_time_limit" not in info[(a, "worker_tasks.mul")]
    assert sorted(rabbit["vhost"].queue_names()) == before


def test_pause_and_resume_q1_on_rabbitmq(run, rabbit):
    import time

    from conftest import make_app

    url, names = rabbit["url"], sorted([rabbit["a"].name, rabbit["b"].name])
    before = sorted(rabbit["vhost"].queue_names())
    r = run("pause", "q1", "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted((row["worker"], row["ok"]) for row in r.json()) == [(n, True) for n in names]
    queues = {q["name"]: q for q in run("queues", "-b", url, "-o", "json").json()}
    assert queues["q1"].get("paused") is True and "paused" not in queues["q2"]
    assert "celerytool.paused.q1" not in queues  # our record is plumbing (shown with --all)
    workers = {w["name"]: w for w in run("workers", "-b", url, "-o", "json").json()}
    assert all(workers[n]["paused"] == ["q1"] and "q1" not in workers[n]["queues"] for n in names), workers
    app = make_app(url, rabbit["server"].url(0))
    try:
        held = app.send_task("worker_tasks.add", args=[1, 2], queue="q1")
        assert app.send_task("worker_tasks.add", args=[3, 4], queue="q2").get(timeout=30) == 7
        time.sleep(5)
        assert held.state == "PENDING"
        r = run("resume", "q1", "-b", url, "--yes", "-o", "json")
        assert r.exit_code == 0, r
        assert sorted((row["worker"], row["ok"]) for row in r.json()) == [(n, True) for n in names]
        assert held.get(timeout=30) == 3
    finally:
        app.close()
    queues = {q["name"]: q for q in run("queues", "-b", url, "-o", "json", "--all").json()}
    assert "paused" not in queues["q1"] and "celerytool.paused.q1" not in queues
    assert sorted(rabbit["vhost"].queue_names()) == before


def test_shutdown_stops_exactly_w2(run, rabbit):
    url, a, b = rabbit["url"], rabbit["a"].name, rabbit["b"].name
    r = run("shutdown", "-d", b, "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert [(row["worker"], row["ok"]) for row in r.json()] == [(b, True)]
    rabbit["b"].proc.wait(30)
    r = run("workers", "-b", url, "-o", "json")
    assert [w["name"] for w in r.json() if w["status"] == "online"] == [a]
