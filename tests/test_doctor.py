"""celerytool doctor: exact census of a Redis filled by real Celery, every finding, each --fix."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import redis

from conftest import clean_db_url, make_app
from services import wait_for
from workers import start_worker

# An inspect client that dies right after its broadcast went out, before reading any reply:
# its reply queue stays (the leak doctor finds), whatever the machine's load.
INSPECT_CLIENT = """
import os, sys
from celery import Celery
from kombu import pidbox
def collect(self, *args, **kwargs):
    print('sent', flush=True)
    os._exit(0)
pidbox.Mailbox._collect = collect
app = Celery(broker=sys.argv[1])
dest = sys.argv[2:] or None
app.control.inspect(timeout=60, destination=dest).ping()
"""


def _keys(client, pattern):
    return sorted(client.scan_iter(match=pattern, count=1000))


def _inspect_client(url, *destination):
    proc = subprocess.Popen([sys.executable, "-c", INSPECT_CLIENT, url, *destination],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout.readline().strip() == b"sent"
    proc.wait(30)
    return proc


def _classes(report):
    return {c["class"]: c for c in report["classes"]}


class _Group:
    """A GroupResult's tuple form, without AsyncResults."""

    def __init__(self, ids):
        self.ids = ids

    def as_tuple(self):
        return (("g-doctor", None), [((i, None), None) for i in self.ids])


@pytest.fixture(scope="module")
def dirty(redis_server, tmp_path_factory):
    """A database where Celery did what the findings describe; the worker ends with SIGKILL."""
    url = clean_db_url(redis_server, 13)  # a db no other test sends to: kombu declares once per URL
    client = redis.Redis.from_url(url)
    worker = start_worker(url, tmp_path_factory.mktemp("doctor-worker"))
    app = make_app(url)
    no_ttl = make_app(url, result_expires=None)
    try:
        ids = [app.send_task("worker_tasks.add", (i, i)).id for i in range(6)]
        for tid in ids:  # polled, not AsyncResult.get(): those talk to Redis when collected
            wait_for(lambda tid=tid: app.backend.get_task_meta(tid)["status"] == "SUCCESS", timeout=30)
        app.backend.save_group("g-doctor", _Group(ids[:2]))  # what GroupResult.save() stores
        for i in range(4):  # results stored without TTL (result_expires=None)
            no_ttl.backend.store_result(f"nottl-{i}", i, "SUCCESS")
        # a reply list leaked by a client killed while the (solo) worker was busy
        slow = app.send_task("worker_tasks.slow", (3,)).id
        # the worker is inside the task (task_track_started): control messages wait for it
        wait_for(lambda: app.backend.get_task_meta(slow)["status"] == "STARTED", timeout=30)
        _inspect_client(url)  # the worker answers into a list nobody reads
        _inspect_client(url, "nobody@nowhere")  # nobody answers: only its binding row stays
        reply_lists = wait_for(lambda: [k for k in _keys(client, "*.reply.celery.pidbox")
                                        if client.type(k) == b"list"], timeout=30)
        # an ETA task held in unacked by a worker that is then killed
        eta = app.send_task("worker_tasks.add", (1, 2), countdown=600).id
        wait_for(lambda: client.hlen("unacked") == 1, timeout=30)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)
        # a queue nobody consumes, with a priority list; keys that are not Celery's
        for i in range(5):
            app.send_task("worker_tasks.add", (i, 0), queue="parked")
        for i in range(2):
            app.send_task("worker_tasks.add", (i, 1), queue="parked", priority=5)
        client.set("app:cache:1", "x")
        client.set("app:cache:2", "y", ex=300)
        client.hset("app:session", "a", "b")
        client.rpush("app:jobs", "not a kombu message")
        client.set("unacked_mutex", "stuck-token")  # a lock taken without expiry
        yield {"url": url, "client": client, "eta": eta, "reply_lists": reply_lists,
               "slow_and_add": len(ids) + 1, "worker": worker.name}
    finally:
        import gc

        gc.collect()  # AsyncResults unsubscribe when collected: while Redis is still up
        worker.stop()
        app.close()
        no_ttl.close()
        client.close()


def test_doctor_counts_and_findings(run, dirty):
    client = dirty["client"]
    time.sleep(1.1)  # the leaked reply list has been idle for more than --idle 1s
    r = run("doctor", "-b", dirty["url"], "--idle", "1s", "--visibility-timeout", "1s", "-o", "json")
    assert r.exit_code == 1, r
    report = r.json()
    classes = _classes(report)
    results = classes["task_result"]
    assert results["count"] == dirty["slow_and_add"] + 4
    assert results["ttl_none"] == 4
    assert results["ttl_max"] <= 86400 and results["ttl_min"] > 86000
    assert results["oldest_date_done"] and results["memory"] > 0 and not results["memory_estimated"]
    assert classes["group_result"]["count"] == 1 and classes["group_result"]["ttl_none"] == 0
    assert classes["reply_list"]["count"] == len(dirty["reply_lists"]) == 1
    assert classes["queue"]["count"] == 1 and classes["queue_priority"]["count"] == 1
    assert classes["unacked"]["count"] == 1 and classes["unacked_index"]["count"] == 1
    assert classes["unacked_mutex"]["count"] == 1
    assert classes["other"]["count"] == 4
    bindings = _keys(client, "_kombu.binding*")
    assert classes["binding"]["count"] == len(bindings)
    assert "chord_counter" not in classes and "event_queue" not in classes
    assert report["keys"] == client.dbsize() == sum(c["count"] for c in report["classes"])

    findings = {f["finding"]: f for f in report["findings"]}
    assert set(findings) == {"results-without-ttl", "reply-lists", "orphan-bindings", "stale-unacked",
                             "stuck-mutex", "silent-workers"}
    # the worker killed with SIGKILL stays bound to the control exchange and answers no ping
    assert findings["silent-workers"]["count"] == 1
    assert findings["silent-workers"]["examples"] == [dirty["worker"]]
    assert findings["results-without-ttl"]["count"] == 4
    assert findings["reply-lists"]["count"] == 1
    assert findings["reply-lists"]["examples"] == [k.decode() for k in dirty["reply_lists"]]
    assert findings["orphan-bindings"]["count"] == 1
    assert findings["stale-unacked"]["count"] == 1
    for f in findings.values():
        assert f["fix"].startswith("celerytool ")

    # the table form says the same, with the fix commands
    r = run("doctor", "-b", dirty["url"], "--idle", "1s", "--visibility-timeout", "1s")
    assert r.exit_code == 1
    assert "reply lists" in r.stdout and "fix: celerytool doctor --fix reply-lists" in r.stdout


def _snapshot(client):
    return {k: (client.type(k), client.pttl(k) >= 0) for k in client.scan_iter(count=1000)}


def test_doctor_fixes_each_finding_exactly(run, dirty):
    client, url = dirty["client"], dirty["url"]
    time.sleep(1.1)
    opts = ("-b", url, "--idle", "1s", "--visibility-timeout", "1s")

    before = _snapshot(client)
    r = run("doctor", "--fix", "results-without-ttl", "--ttl", "1d", "--dry-run", *opts)
    assert r.exit_code == 0, r
    assert "would set a TTL of 1d on 4 result(s) without one" in r.stderr, r
    assert _snapshot(client) == before  # a dry run changes nothing
    r = run("doctor", "--fix", "results-without-ttl", "--ttl", "1d", *opts)
    assert r.exit_code == 2  # not on a terminal: needs --yes
    r = run("doctor", "--fix", "results-without-ttl", "--ttl", "1d", "--yes", "-o", "json", *opts)
    assert r.exit_code == 0, r
    assert r.json()["expiry_set"] == 4
    after = _snapshot(client)
    changed = {k for k in before if before[k] != after.get(k)}
    assert changed == {f"celery-task-meta-nottl-{i}".encode() for i in range(4)}

    reply_table = b"_kombu.binding.reply.celery.pidbox"
    rows_before = client.smembers(reply_table)
    [leaked] = dirty["reply_lists"]
    before = _snapshot(client)
    r = run("doctor", "--fix", "reply-lists", "--yes", "-o", "json", *opts)
    assert r.exit_code == 0, r
    assert r.json()["lists_removed"] == 1 and r.json()["bindings_removed"] == 1
    after = _snapshot(client)
    assert set(before) - set(after) == {leaked} and set(after) <= set(before)
    gone_rows = rows_before - client.smembers(reply_table)
    assert [row.split(b"\x06\x16")[-1] for row in gone_rows] == [leaked]

    before = _snapshot(client)
    rows_before = client.smembers(reply_table)
    r = run("doctor", "--fix", "orphan-bindings", "--yes", "-o", "json", *opts)
    assert r.exit_code == 0, r
    assert r.json()["bindings_removed"] == 1
    assert len(rows_before - client.smembers(reply_table)) == 1
    assert {k for k in before if k != reply_table} == {k for k in _snapshot(client) if k != reply_table}

    # the stuck lock first: requeue takes it, as kombu does
    r = run("doctor", "--fix", "stuck-mutex", "--yes", *opts)
    assert r.exit_code == 0, r
    assert not client.exists("unacked_mutex")
    r = run("doctor", "--fix", "stale-unacked", "--yes", "-o", "json", *opts)
    assert r.exit_code == 0, r
    assert r.json()["requeued"] == 1
    r = run("doctor", "--fix", "silent-workers", "--dry-run", "-o", "json", *opts)
    assert r.json()["workers"] == [dirty["worker"]] and r.json()["bindings_removed"] == 1
    assert any(dirty["worker"].encode() in m for m in client.smembers("_kombu.binding.celery.pidbox"))
    r = run("doctor", "--fix", "silent-workers", "--yes", "-o", "json", *opts)
    assert r.exit_code == 0 and r.json()["bindings_removed"] == 1, r
    assert not any(dirty["worker"].encode() in m for m in client.smembers("_kombu.binding.celery.pidbox"))
    assert client.hlen("unacked") == 0 and client.llen("celery") == 1
    assert dirty["eta"].encode() in client.lindex("celery", 0)

    r = run("doctor", "-o", "json", *opts)
    assert r.exit_code == 0, r
    assert r.json()["findings"] == []


def test_doctor_clean_database_has_no_findings(run, redis_server, tmp_path_factory):
    url = clean_db_url(redis_server, 14)
    worker = start_worker(url, tmp_path_factory.mktemp("doctor-clean"))
    app = make_app(url)
    try:
        results = [app.send_task("worker_tasks.add", (i, 1)) for i in range(5)]
        results.append(app.send_task("worker_tasks.fail", ("x",)))
        for res in results:
            res.get(timeout=30, propagate=False)
        del results, res
        assert app.control.inspect(timeout=2).ping()  # a normal client leaves nothing behind
        r = run("doctor", "-b", url, "-o", "json")
        assert r.exit_code == 0, r
        report = r.json()
        assert report["findings"] == []
        classes = _classes(report)
        assert classes["task_result"]["count"] == 6 and classes["task_result"]["ttl_none"] == 0
        assert "other" not in classes and "reply_list" not in classes
        r = run("doctor", "-b", url)
        assert r.exit_code == 0 and "no findings" in r.stdout
    finally:
        worker.stop()
        app.close()


def test_doctor_refuses_rabbitmq_and_unknown_fix(run):
    r = run("doctor", "-b", "amqp://guest:secret@127.0.0.1:1//")
    assert r.exit_code == 2 and "secret" not in r.stderr
    r = run("doctor", "--fix", "everything", "-b", "redis://127.0.0.1:1/0")
    assert r.exit_code == 2


def test_fix_several_and_all(run, redis_url, redis_client):
    redis_client.set("unacked_mutex", "stuck-token")  # a lock without expiry
    r = run("doctor", "-b", redis_url, "-o", "json")
    assert r.exit_code == 1 and [f["finding"] for f in r.json()["findings"]] == ["stuck-mutex"]
    r = run("doctor", "-b", redis_url, "--fix", "all", "--dry-run", "-o", "json")
    assert r.exit_code == 0, r
    assert redis_client.exists("unacked_mutex")  # a dry run changes nothing
    r = run("doctor", "-b", redis_url, "--fix", "all", "--yes", "-o", "ndjson")
    assert r.exit_code == 0, r
    assert [row["fix"] for row in r.ndjson()] == ["stuck-mutex", "reply-lists", "orphan-bindings", "silent-workers",
                                                  "stale-unacked"]
    assert "results-without-ttl needs --ttl" in r.stderr
    assert not redis_client.exists("unacked_mutex")
    r = run("doctor", "-b", redis_url, "--fix", "reply-lists,stuck-mutex", "--fix", "orphan-bindings", "--yes")
    assert r.exit_code == 0 and r.stderr.count("applied") == 3, r
    assert run("doctor", "-b", redis_url, "--fix", "reply-lists,nope", "--yes").exit_code == 2


def test_memory_is_estimated_beyond_the_sample(run, redis_url, redis_client):
    app = make_app(redis_url)
    for i in range(30):
        app.backend.store_result(f"m-{i}", "x" * 100, "SUCCESS")
    r = run("doctor", "-b", redis_url, "--sample", "10", "-o", "json")
    c = _classes(r.json())["task_result"]
    assert c["count"] == 30 and c["memory_estimated"] and c["memory_sample"] == 10
    exact = sum(redis_client.memory_usage(k) for k in redis_client.scan_iter("celery-task-meta-*"))
    assert abs(c["memory"] - exact) <= exact * 0.2
    app.close()
