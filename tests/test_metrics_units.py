"""EventMetrics on hand-made event dicts: bounded labels, hostile fields, timeouts and
forgetting on a clock the test moves (the live behaviour is in test_metrics_live.py)."""

from __future__ import annotations

from metrics_helpers import parse, total, value


def _metrics(**config):
    from celerytool.metrics.events import EventConfig, EventMetrics

    now = [1000.0]
    m = EventMetrics(EventConfig(**config), clock=lambda: now[0])
    return m, now


def _scrape(m):
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(m)
    return parse(generate_latest(registry).decode())


def test_task_names_past_max_tasks_are_other():
    m, _ = _metrics(max_tasks=3)
    m.feed([{"type": "task-succeeded", "uuid": f"id{i}", "name": f"t{i % 5}", "hostname": "w@h",
             "runtime": 0.1} for i in range(10)])
    s = _scrape(m)
    names = {dict(ls)["name"] for (n, ls) in s if n == "celery_task_succeeded_total"}
    assert names == {"t0", "t1", "t2", "other"}
    assert total(s, "celery_task_succeeded_total") == 10
    assert total(s, "celery_task_succeeded_total", name="other") == 4


def test_hostile_events_fail_alone_and_stay_small():
    m, _ = _metrics()
    m.feed(["not a dict", None, {"type": ["task-failed"]}, {"no": "type"},
            {"type": "task-succeeded", "uuid": {"x": 1}, "name": "n" * 10**6, "hostname": 7,
             "runtime": float("nan")},
            {"type": "task-failed", "uuid": "u", "name": "t", "hostname": "w@h", "exception": "x" * 10**5},
            {"type": "worker-heartbeat", "hostname": "w@h", "active": "lots", "processed": 1e300},
            {"type": "task-succeeded", "uuid": "ok", "name": "good", "hostname": "w@h", "runtime": 2.0}])
    s = _scrape(m)
    assert all(len(v) <= 200 for (_, ls) in s for _, v in ls)
    assert total(s, "celery_task_succeeded_total") == 2
    assert total(s, "celery_task_runtime_count") == 1  # NaN run time refused
    assert total(s, "celery_task_failed_total", exception="UnknownException") + \
        total(s, "celery_task_failed_total", exception="x" * 200) == 1
    assert value(s, "celery_worker_tasks_active", hostname="w@h") == 0
    assert value(s, "celery_worker_tasks_processed_total", hostname="w@h") == 0


def test_worker_down_after_timeout_and_forgotten_after_forget_after():
    m, now = _metrics(worker_timeout=10, forget_after=30)
    m.feed([{"type": "worker-heartbeat", "hostname": "a@h", "active": 2, "processed": 5, "local_received": 1000.0},
            {"type": "task-succeeded", "uuid": "u", "name": "t", "hostname": "a@h", "runtime": 1.0}])
    assert value(_scrape(m), "celery_worker_up", hostname="a@h") == 1
    now[0] = 1011.0
    s = _scrape(m)
    assert value(s, "celery_worker_up", hostname="a@h") == 0
    assert value(s, "celery_worker_tasks_active", hostname="a@h") == 0
    now[0] = 1031.0
    s = _scrape(m)
    assert not [ls for (_, ls) in s if ("hostname", "a@h") in ls]
    m.feed([{"type": "worker-offline", "hostname": "b@h", "local_received": 1031.0}])
    assert value(_scrape(m), "celery_worker_up", hostname="b@h") == 0


def test_worker_label_budget_frees_forgotten_workers():
    m, now = _metrics(max_workers=1, forget_after=5)
    m.feed([{"type": "worker-heartbeat", "hostname": "a@h", "local_received": 1000.0}])
    m.feed([{"type": "worker-heartbeat", "hostname": "b@h", "local_received": 1000.0}])
    assert {dict(ls)["hostname"] for (n, ls) in _scrape(m) if n == "celery_worker_up"} == {"a@h", "other"}
    now[0] = 1010.0
    m.feed([{"type": "worker-heartbeat", "hostname": "c@h", "local_received": 1010.0}])
    assert {dict(ls)["hostname"] for (n, ls) in _scrape(m) if n == "celery_worker_up"} == {"c@h"}
