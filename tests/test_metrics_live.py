"""metrics --serve against real workers with events on: task counters equal what was sent,
succeeded and failed; a SIGKILLed worker goes to 0 and then disappears; a real Prometheus
server scrapes it; memory stays flat over a stream of events published as Celery does.

The module has a redis-server of its own: other tests flush theirs, which would unbind the
workers."""

from __future__ import annotations

import pytest

from conftest import make_app
from metrics_helpers import (
    EventGenerator,
    parse,
    promtool_check,
    serve,
    start_prometheus,
    total,
    value,
)
from services import start_redis, wait_for
from workers import launch_worker


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("metrics-redis"))
    url = server.url(0)
    tmp = tmp_path_factory.mktemp("metrics-workers")
    workers = [launch_worker(url, tmp / n, queues="mq", events=True, heartbeat=True, prefix=f"m{n}")
               for n in ("a", "b")]
    try:
        for w in workers:
            w.wait_ready(60)
        app = make_app(url, task_send_sent_event=True)
        yield {"url": url, "workers": workers, "app": app, "tmp": tmp, "server": server}
        app.close()
    finally:
        for w in workers:
            w.stop(wait=5)
        server.stop()


def test_task_counters_equal_what_was_sent_succeeded_and_failed(fleet, tmp_path):
    a, b = fleet["workers"]
    served = serve(fleet["url"], tmp_path, "-t", "10m", "--buckets", "0.5,1,5")
    try:
        def both_up():
            s = served.scrape()
            return all(value(s, "celery_worker_up", hostname=w.name) == 1 for w in (a, b))

        wait_for(both_up, timeout=30, every=0.5)
        app = fleet["app"]
        ok = [app.send_task("worker_tasks.add", (i, i), queue="mq") for i in range(8)]
        bad = [app.send_task("worker_tasks.fail", ("no",), queue="mq") for _ in range(3)]
        for r in ok:
            assert r.get(timeout=60) == 2 * ok.index(r)
        for r in bad:
            r.get(timeout=60, propagate=False)
            assert r.state == "FAILURE"

        def counted():
            s = served.scrape()
            done = (total(s, "celery_task_succeeded_total") == 8
                    and total(s, "celery_task_failed_total") == 3)
            return s if done else None

        s = wait_for(counted, timeout=30, every=0.5)
        text = served.text()
        promtool_check(text)
        assert total(s, "celery_task_sent_total", name="worker_tasks.add", queue_name="mq") == 8
        assert total(s, "celery_task_sent_total", name="worker_tasks.fail", queue_name="mq") == 3
        for kind in ("received", "started"):
            assert total(s, f"celery_task_{kind}_total", queue_name="mq") == 11, kind
        assert total(s, "celery_task_succeeded_total", name="worker_tasks.add") == 8
        assert total(s, "celery_task_failed_total", name="worker_tasks.fail", exception="CustomError") == 3
        assert total(s, "celery_task_failed_total", name="worker_tasks.add") == 0  # zero series
        assert total(s, "celery_task_runtime_count", name="worker_tasks.add") == 8
        assert total(s, "celery_task_runtime_bucket", name="worker_tasks.add", le="+Inf") == 8
        assert total(s, "celery_task_queue_wait_seconds_count") == 11
        workers_seen = {dict(ls)["hostname"] for (n, ls) in s if n == "celery_task_started_total"}
        assert workers_seen <= {a.name, b.name}

        def processed():
            s = served.scrape()
            return total(s, "celery_worker_tasks_processed_total") == 11

        wait_for(processed, timeout=20, every=0.5)  # the next heartbeats carry the counts
        assert served.get("/health") == (200, "ok\n")
    finally:
        served.stop()


def test_a_sigkilled_worker_goes_to_0_then_disappears(fleet, tmp_path):
    victim = launch_worker(fleet["url"], tmp_path / "victim", queues="mq-victim", events=True,
                           heartbeat=True, prefix="victim")
    served = serve(fleet["url"], tmp_path, "-t", "10m", "--worker-timeout", "4",
                   "--forget-workers-after", "10")
    try:
        victim.wait_ready(60)
        wait_for(lambda: value(served.scrape(), "celery_worker_up", hostname=victim.name) == 1,
                 timeout=30, every=0.5)
        victim.proc.kill()  # SIGKILL: no worker-offline event
        victim.proc.wait(10)
        wait_for(lambda: value(served.scrape(), "celery_worker_up", hostname=victim.name) == 0,
                 timeout=30, every=0.5)
        survivor = fleet["workers"][0].name
        assert value(served.scrape(), "celery_worker_up", hostname=survivor) == 1

        def gone():
            s = served.scrape()
            return all(ls_host != victim.name for (_, ls) in s for k, ls_host in ls if k == "hostname")

        wait_for(gone, timeout=40, every=0.5)
        assert value(served.scrape(), "celery_worker_up", hostname=survivor) == 1
    finally:
        served.stop()
        victim.stop(wait=2)


def test_worker_label_host_joins_workers_of_one_host(fleet, tmp_path):
    served = serve(fleet["url"], tmp_path, "-t", "10m", "--worker-label", "host")
    try:
        s = wait_for(lambda: (lambda s: s if value(s, "celery_worker_up", hostname="localhost") == 1
                              else None)(served.scrape()), timeout=30, every=0.5)
        assert {dict(ls)["hostname"] for (n, ls) in s if n == "celery_worker_up"} == {"localhost"}
    finally:
        served.stop()


def test_prometheus_scrapes_serve(fleet, tmp_path):
    app = fleet["app"]
    for _ in range(7):
        app.send_task("worker_tasks.add", (1, 1), queue="nobody-consumes")
    served = serve(fleet["url"], tmp_path, "-t", "10m", "-Q", "nobody-consumes")
    prom = start_prometheus(served.port, tmp_path / "prom")
    try:
        def up():
            rows = prom.query('up{job="celerytool"}')
            return rows and rows[0]["value"][1] == "1"

        wait_for(up, timeout=60, every=0.5)

        def depth():
            rows = prom.query('celery_queue_length{queue_name="nobody-consumes"}')
            return rows and rows[0]["value"][1]

        assert wait_for(depth, timeout=60, every=0.5) == "7"
        rows = prom.query("celery_broker_up")
        assert rows and rows[0]["value"][1] == "1"
    finally:
        prom.stop()
        served.stop()


def test_memory_is_flat_over_a_stream_of_events(tmp_path):
    """A smaller run of benchmarks/bench_metrics.py's (1,000,000 events there)."""
    server = start_redis(tmp_path / "redis")
    served = serve(server.url(0), tmp_path, "-t", "10m")
    gen = EventGenerator(server.url(0))
    try:
        wait_for(lambda: served.get("/health")[0] == 200, timeout=30)
        tasks, half = 12_000, 6_000
        rss_half = 0

        def read():
            """Task events the server has read (heartbeats left out)."""
            s = served.scrape()
            return sum(total(s, "celerytool_events_read_total", type=t)
                       for t in ("task-received", "task-started", "task-succeeded"))

        def primed():  # pub/sub keeps nothing for a subscriber that is not there yet
            gen.heartbeat()
            return total(served.scrape(), "celerytool_events_read_total", type="worker-heartbeat") > 0

        wait_for(primed, timeout=60, every=0.5)
        for i in range(tasks):
            gen.task(i)
            if i % 2000 == 1999:  # keep Redis' pub/sub buffer small: let the server catch up
                gen.flush()
                wait_for(lambda n=3 * (i + 1): read() >= n, timeout=120, every=0.2)
            if i == half - 1:
                rss_half = served.rss()[0]
        gen.flush()
        wait_for(lambda: read() >= 3 * tasks, timeout=120, every=0.2)
        rss_end, peak = served.rss()
        s = served.scrape()
        assert total(s, "celery_task_succeeded_total") == tasks
        assert total(s, "celery_task_runtime_count") == tasks
        assert len({dict(ls)["name"] for (n, ls) in s if n == "celery_task_succeeded_total"}) == 100
        assert peak < 150 * 2**20, peak
        assert rss_end - rss_half < 8 * 2**20, (rss_half, rss_end)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; read {read()} of {gen.sent} events; server said "
                             f"{served.log.read_text()[-1000:]!r}") from None
    finally:
        gen.close()
        served.stop()
        server.stop()


def test_delayed_counts_eta_tasks_a_worker_holds(fleet, run):
    """Last in the module: the two tasks stay held (due in 10 minutes) until the workers stop."""
    app = fleet["app"]
    for _ in range(2):
        app.send_task("worker_tasks.add", (1, 2), queue="mq", countdown=600)

    def held():
        r = run("metrics", "-b", fleet["url"], "--delayed")
        s = parse(r.stdout)
        return s if value(s, "celery_queue_delayed", queue_name="mq") == 2 else None

    s = wait_for(held, timeout=30, every=0.5)
    assert value(s, "celery_queue_unacked", queue_name="mq") == 2
    assert value(s, "celery_queue_length", queue_name="mq") == 0
    r = run("metrics", "-b", fleet["url"])
    assert not [k for k in parse(r.stdout) if k[0] == "celery_queue_delayed"]
