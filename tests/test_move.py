"""move on real Redis: atomic per message, even under kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from msgfactory import all_items, clones, ids_of, push, real_envelope

ROOT = Path(__file__).resolve().parent.parent


def test_move_selected_to_another_queue(run, redis_url, redis_client, celery_app):
    a = clones(real_envelope(celery_app, redis_client, "tasks.a", (1,)), 50)
    b = clones(real_envelope(celery_app, redis_client, "tasks.b", (2,), priority=9), 20)
    push(redis_client, "celery", [r for _, r in a])
    push(redis_client, "celery\x06\x169", [r for _, r in b])
    r = run("move", "celery", "slow", "--task", "tasks.b", "-b", redis_url, "--dry-run", "-o", "json")
    assert r.exit_code == 0 and redis_client.llen("slow\x06\x169") == 0, r
    assert {k: r.json()[k] for k in ("matched", "to", "dry_run")} == {"matched": 20, "to": "slow", "dry_run": True}
    r = run("move", "celery", "slow", "--task", "tasks.b", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["moved"] == 20 and r.json()["kept"] == 50 and r.json()["to"] == "slow"
    moved = all_items(redis_client, "slow")
    assert ids_of(moved) == [t for t, _ in b]
    assert redis_client.llen("slow\x06\x169") == 20  # same priority list on the destination
    assert json.loads(moved[0])["properties"]["delivery_info"]["routing_key"] == "slow"
    assert ids_of(all_items(redis_client, "celery")) == [t for t, _ in a]


def test_keep_routing_moves_bytes_untouched(run, redis_url, redis_client, celery_app):
    raws = [r for _, r in clones(real_envelope(celery_app, redis_client, "tasks.a"), 5)]
    push(redis_client, "celery", raws)
    r = run("move", "celery", "other", "--keep-routing", "-b", redis_url, "-y")
    assert r.exit_code == 0, r
    assert all_items(redis_client, "other") == raws


def test_move_to_another_redis(run, redis_url, redis_client, celery_app, redis_server):
    raws = [r for _, r in clones(real_envelope(celery_app, redis_client, "tasks.a"), 30)]
    push(redis_client, "celery", raws)
    other_url = redis_server.url(3)
    r = run("move", "celery", "celery", "--to-broker", other_url, "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    import redis

    other = redis.Redis.from_url(other_url)
    try:
        assert all_items(other, "celery") == raws and redis_client.llen("celery") == 0
    finally:
        other.flushdb()
        other.close()


def test_destination_of_the_wrong_type(run, redis_url, redis_client, celery_app):
    raws = [r for _, r in clones(real_envelope(celery_app, redis_client, "tasks.a"), 10)]
    push(redis_client, "celery", raws)
    redis_client.sadd("dst", "x")
    r = run("move", "celery", "dst", "-b", redis_url, "-y")
    assert r.exit_code == 65 and "set" in r.stderr and "Traceback" not in r.stderr
    assert all_items(redis_client, "celery") == raws
    r = run("move", "nosuch", "dst2", "-b", redis_url, "-y")
    assert r.exit_code == 66


def test_kill_9_during_a_move_loses_and_duplicates_nothing(redis_url, redis_client, celery_app):
    a = clones(real_envelope(celery_app, redis_client, "tasks.a", (1,), {"k": "v"}), 100_000)
    b = clones(real_envelope(celery_app, redis_client, "tasks.b", (2,), {"k": "w"}), 100_000)
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]
    push(redis_client, "celery", [r for _, r in mixed])
    expected = Counter(t for t, _ in mixed)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celerytool", "move", "celery", "dst", "--task", "tasks.b",
         "-b", redis_url, "-y"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait until the move has really started, then kill it at a random moment
    deadline = time.monotonic() + 30
    while redis_client.llen("dst") == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.5))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    src, dst = all_items(redis_client, "celery"), all_items(redis_client, "dst")
    assert 0 < len(dst) < 100_000, "kill -9 did not land during the move"
    seen = Counter(ids_of(src) + ids_of(dst))
    assert seen == expected  # every message exactly once across the two queues
    assert set(ids_of(dst)) <= {t for t, _ in b}


def test_move_selects_by_position_among_identical_copies(run, redis_url, redis_client, celery_app):
    g1 = real_envelope(celery_app, redis_client, "tasks.good", (1,))
    x = real_envelope(celery_app, redis_client, "tasks.x", (2,))
    push(redis_client, "celery", [g1, x, g1])
    r = run("move", "celery", "slow", "--task", "tasks.x", "--keep-routing", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["moved"] == 1, r
    assert all_items(redis_client, "celery") == [g1, g1] and all_items(redis_client, "slow") == [x]
