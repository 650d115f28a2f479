"""purge against a real Redis with real Celery messages, workers and producers running."""

from __future__ import annotations

import threading
import time

from msgfactory import all_items, clones, ids_of, push, real_envelope


def seed(celery_app, client, n_good, n_bad, queue="celery"):
    good = real_envelope(celery_app, client, "tasks.good", (1,), {"user": "ann"}, queue=queue)
    bad = real_envelope(celery_app, client, "tasks.bad", (2,), {"user": "bob"}, queue=queue)
    g, b = clones(good, n_good), clones(bad, n_bad)
    mixed = []
    for i in range(max(n_good, n_bad)):  # interleave: a bad one every n_good // n_bad
        if i < len(g):
            mixed.append(g[i])
        if i < len(b):
            mixed.append(b[i])
    push(client, queue, [raw for _, raw in mixed])
    return [t for t, _ in g], [t for t, _ in b], [raw for _, raw in mixed]


def test_purge_everything_including_priority_lists(run, redis_url, redis_client, celery_app):
    for i in range(7):
        celery_app.send_task("tasks.x", (i,), priority=i)
    assert sum(redis_client.llen(k) for k in redis_client.keys("celery*")) == 7
    r = run("purge", "celery", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] == 7 and r.json()["kept"] == 0
    assert all_items(redis_client, "celery") == []


def test_filtered_purge_keeps_order_and_counts(run, redis_url, redis_client, celery_app):
    good, bad, before = seed(celery_app, redis_client, 300, 30)
    dry = run("purge", "celery", "-b", redis_url, "--task", "tasks.bad", "--dry-run", "-o", "json")
    assert dry.json()["matched"] == 30 and dry.json()["removed"] == 0
    assert all_items(redis_client, "celery") == before
    r = run("purge", "celery", "-b", redis_url, "--task", "tasks.bad", "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json() | {} == r.json() and r.json()["removed"] == 30 and r.json()["kept"] == 300
    after = all_items(redis_client, "celery")
    assert ids_of(after) == good  # same order as before, bad ones gone


def test_limit_stops_early_and_restores_order(run, redis_url, redis_client, celery_app):
    good, bad, before = seed(celery_app, redis_client, 3000, 300)
    r = run("purge", "celery", "-b", redis_url, "--where", "kwargs.user == 'bob'", "--limit", "5", "-y",
            "-o", "json")
    assert r.json()["removed"] == 5
    expected = [raw for raw in before if ids_of([raw])[0] not in set(bad[:5])]
    assert all_items(redis_client, "celery") == expected


def test_filtered_purge_with_producer_and_consumer_running(run, redis_url, redis_client, celery_app):
    good, bad, _ = seed(celery_app, redis_client, 20000, 2000)
    import redis as redislib

    stop = threading.Event()
    produced: list[str] = []
    consumed: list[bytes] = []

    def producer():
        from conftest import make_app

        app = make_app(redis_url)
        while not stop.is_set():
            produced.append(app.send_task("tasks.good", (3,), {"user": "new"}).id)
        app.close()

    def consumer():
        c = redislib.Redis.from_url(redis_url)
        while not stop.is_set():
            item = c.rpop("celery")
            if item is not None:
                consumed.append(item)
            time.sleep(0.0005)
        c.close()

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 20
        while (len(consumed) < 50 or len(produced) < 50) and time.monotonic() < deadline:
            time.sleep(0.01)
        r = run("purge", "celery", "-b", redis_url, "--task", "tasks.bad", "-y", "-o", "json")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r.exit_code == 0, r
    left = ids_of(all_items(redis_client, "celery"))
    taken = ids_of(consumed)
    assert len(produced) > 50 and len(taken) > 50
    assert not set(bad) & set(left), "a matching message survived"
    everyone = left + taken
    assert len(everyone) == len(set(everyone)), "a message was duplicated"
    survivors = set(everyone)
    assert set(good) <= survivors and set(produced) <= survivors, "a non-matching message was lost"
    removed = set(bad) - set(taken)
    assert r.json()["removed"] == len(removed)


def test_unknown_queue_and_wrong_type(run, redis_url, redis_client):
    r = run("purge", "nosuch", "-b", redis_url, "-y")
    assert r.exit_code == 66 and "nosuch" in r.stderr
    redis_client.hset("hashq", "a", "b")
    r = run("purge", "hashq", "-b", redis_url, "-y", "--task", "x")
    assert r.exit_code == 65 and "hash" in r.stderr
    assert redis_client.hget("hashq", "a") == b"b"


def test_refuses_without_yes_when_not_a_terminal(run, redis_url, redis_client, celery_app):
    celery_app.send_task("tasks.x")
    r = run("purge", "celery", "-b", redis_url)
    assert r.exit_code == 2 and "--yes" in r.stderr
    assert redis_client.llen("celery") == 1


def test_bad_where_is_a_usage_error_with_a_caret(run, redis_url):
    r = run("purge", "celery", "-b", redis_url, "--where", "args[0] >> 3", "-y")
    assert r.exit_code == 2
    lines = r.stderr.splitlines()
    assert "column 10" in lines[0]  # the second '>' is where it stops making sense
    assert lines[-1].index("^") == lines[-2].index(">>") + 1
    assert "Traceback" not in r.stderr


def test_older_than_is_not_offered_on_a_queue(run, redis_url, redis_client, celery_app):
    celery_app.send_task("tasks.x")
    r = run("purge", "celery", "-b", redis_url, "--older-than", "1h", "-y")
    assert r.exit_code == 2 and "No such option '--older-than'" in r.stderr
    assert redis_client.llen("celery") == 1
    r = run("purge", "celery", "-b", redis_url, "--where", "age > 3600", "-y")  # no age on queued messages
    assert r.exit_code == 2 and "age" in r.stderr
    assert redis_client.llen("celery") == 1


def test_ctrl_c_stops_between_batches_and_restores_order(redis_url, redis_client, celery_app):
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    good, bad, before = seed(celery_app, redis_client, 45000, 5000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celerytool", "purge", "celery", "--where", "kwargs.user == 'bob'",
         "-y", "-o", "json", "-b", redis_url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while redis_client.llen("celery") == len(before) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    result = json.loads(out)
    assert result["interrupted"] and 0 < result["removed"] < 5000
    assert b"interrupted" in err and b"Traceback" not in err
    left = all_items(redis_client, "celery")
    gone = set(bad) - set(ids_of(left))
    assert len(gone) == result["removed"]
    assert left == [raw for raw in before if ids_of([raw])[0] not in gone]  # order as before


def test_selected_purge_by_position_among_identical_copies(run, redis_url, redis_client, celery_app):
    # G1, X, G1: the same bytes twice around a match (a message published twice)
    g1 = real_envelope(celery_app, redis_client, "tasks.good", (1,))
    x = real_envelope(celery_app, redis_client, "tasks.x", (2,))
    push(redis_client, "celery", [g1, x, g1])
    r = run("purge", "celery", "-b", redis_url, "--task", "tasks.x", "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] == 1 and "vanished" not in r.json(), r
    assert all_items(redis_client, "celery") == [g1, g1]


def test_selected_purge_past_a_window_of_identical_copies(run, redis_url, redis_client, celery_app):
    # more identical copies than one batch holds: the walk must not take them for its own kept ones
    g1 = real_envelope(celery_app, redis_client, "tasks.good", (1,))
    xs = [raw for _, raw in clones(real_envelope(celery_app, redis_client, "tasks.x", (2,)), 3)]
    before = [g1] * 1500 + [xs[0]] + [g1] * 1200 + [xs[1]] + [g1] * 10 + [xs[2], xs[2]]
    push(redis_client, "celery", before)
    r = run("purge", "celery", "-b", redis_url, "--task", "tasks.x", "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] == 4, r
    assert all_items(redis_client, "celery") == [g1] * 2710


def test_limit_among_identical_copies_restores_order(run, redis_url, redis_client, celery_app):
    g1 = real_envelope(celery_app, redis_client, "tasks.good", (1,))
    xs = [raw for _, raw in clones(real_envelope(celery_app, redis_client, "tasks.x", (2,)), 2)]
    h = real_envelope(celery_app, redis_client, "tasks.other", (3,))
    push(redis_client, "celery", [g1, xs[0], g1] * 700 + [xs[1], g1, h, g1])
    r = run("purge", "celery", "-b", redis_url, "--task", "tasks.x", "--limit", "1", "-y", "-o", "json")
    assert r.json()["removed"] == 1, r
    assert all_items(redis_client, "celery") == [g1, g1] + [g1, xs[0], g1] * 699 + [xs[1], g1, h, g1]
