"""The command line always wins: with another broker exported in Celery's own environment
variables, every command talks to the broker it was given with -b (or -P) only.

Two private Redis servers: ``real`` has a worker (events on); ``other`` is what the environment
names.  Celery's app prefers CELERY_BROKER_URL over ``Celery(broker=...)``, so a bare app built
from -b alone would talk to ``other``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from conftest import make_app
from services import start_redis, wait_for
from workers import EventListener, start_worker

ROOT = Path(__file__).resolve().parent.parent
CELERY_VARS = ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL", "CELERY_RESULT_BACKEND")


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    real = start_redis(tmp_path_factory.mktemp("real-redis"))
    other = start_redis(tmp_path_factory.mktemp("other-redis"))
    worker = None
    try:
        worker = start_worker(real.url(0), tmp_path_factory.mktemp("w"), queues="celery", events=True,
                              prefix="real")
        app = make_app(real.url(0))
        yield {"real": real.url(0), "other": other.url(0), "worker": worker, "app": app,
               "other_client": redis.Redis.from_url(other.url(0))}
        app.close()
    finally:
        if worker is not None:
            worker.stop(wait=5)
        real.stop()
        other.stop()


def exported(url: str) -> dict[str, str]:
    return {name: url for name in CELERY_VARS}


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "celerytool", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("exported_url", ["redis", "amqp"])
def test_workers_and_inspect_use_the_command_line_broker(run, two, exported_url):
    env = exported(two["other"] if exported_url == "redis" else "amqp://guest:guest@127.0.0.1:5672//")
    r = run("workers", "-b", two["real"], "-t", "2", "-o", "json", env=env)
    assert r.exit_code == 0, r
    assert [w["name"] for w in r.json()] == [two["worker"].name]
    r = run("inspect", "stats", "-b", two["real"], "-t", "2", "-o", "json", env=env)
    assert r.exit_code == 0, r
    assert two["worker"].name in r.stdout
    assert two["other_client"].keys("*") == []  # nothing reached the exported broker


def test_revoke_goes_only_to_the_command_line_broker(run, two):
    """-b names a broker with no workers; the environment names the one with a worker: nothing is revoked."""
    task_id = str(uuid.uuid4())
    r = run("revoke", task_id, "-b", two["other"], "-y", "-t", "1", env=exported(two["real"]))
    assert r.exit_code == 1 and "no worker acknowledged" in r.stderr, r  # none on -b's broker
    r = run("inspect", "revoked", "-b", two["real"], "-t", "2", "-o", "json")
    assert r.exit_code == 0, r
    assert task_id not in r.stdout  # the worker on the exported broker never heard of it
    r = run("revoke", task_id, "-b", two["real"], "-y", "-t", "2", env=exported(two["other"]))
    assert r.exit_code == 0, r
    assert task_id in run("inspect", "revoked", "-b", two["real"], "-t", "2", "-o", "json").stdout


def assert_events_show_the_next_task(two, env: dict, args: tuple) -> None:
    """`events -b REAL -n 1` (a process of its own, with ``env``) prints the task sent next on REAL."""
    probe = EventListener(redis.Redis.from_url(two["real"]))
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", "events", "-b", two["real"], "-n", "1",
                             "--type", "task-succeeded", "-t", "30"],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(probe.ready, 15)
        task_id = two["app"].send_task("worker_tasks.add", args).id
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[0])["uuid"] == task_id


def test_events_and_top_listen_on_the_command_line_broker(two):
    env = exported(two["other"])
    assert_events_show_the_next_task(two, env, (1, 2))
    done = cli("top", "--once", "-b", two["real"], env={**env, "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr
    assert two["worker"].name.split("@")[0] in done.stdout
    assert two["other_client"].keys("*") == []


def test_send_peek_queues_result_ignore_the_environment(run, two):
    # only the broker exported: the backend defaults to -b's Redis, not to the exported broker
    env = {"CELERY_BROKER_URL": two["other"]}
    r = run("send", "worker_tasks.add", "2", "3", "-b", two["real"], "--wait", "-t", "30", "-o", "json", env=env)
    assert r.exit_code == 0, r
    assert r.json()["result"] == 5
    # a backend exported too: --backend on the command line wins over it
    env = exported(two["other"])
    r2 = run("result", r.json()["id"], "-b", two["real"], "--backend", two["real"], "-o", "json", env=env)
    assert r2.exit_code == 0 and r2.json()[0]["result"] == 5
    assert run("queues", "-b", two["real"], "-o", "json", env=env).exit_code == 0
    assert run("peek", "celery", "-b", two["real"], "-o", "json", env=env).exit_code == 0
    assert two["other_client"].keys("*") == []


def test_a_profile_named_with_P_beats_the_exported_broker(run, two, tmp_path):
    """-P names the broker with the worker; CELERY_BROKER_URL names the other: workers and
    revoke go to the profile's broker only."""
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.real]\nbroker = "{two["real"]}"\n')
    config.chmod(0o600)
    env = {**exported(two["other"]), "CELERYTOOL_CONFIG": str(config)}
    r = run("-P", "real", "workers", "-t", "2", "-o", "json", env=env)
    assert r.exit_code == 0, r
    assert [w["name"] for w in r.json()] == [two["worker"].name]
    task_id = str(uuid.uuid4())
    r = run("-P", "real", "revoke", task_id, "-y", "-t", "2", env=env)
    assert r.exit_code == 0, r
    assert task_id in run("inspect", "revoked", "-b", two["real"], "-t", "2", "-o", "json").stdout
    assert two["other_client"].keys("*") == []


def test_revoke_events_top_with_an_amqp_broker_exported(run, two):
    """An AMQP URL exported beside -b redis://: revoke reaches the Redis worker, events and top
    listen on Redis (a kombu AMQP channel would have been mixed with the Redis one)."""
    env = exported("amqp://guest:guest@127.0.0.1:5672//")
    task_id = str(uuid.uuid4())
    r = run("revoke", task_id, "-b", two["real"], "-y", "-t", "2", env=env)
    assert r.exit_code == 0, r
    assert task_id in run("inspect", "revoked", "-b", two["real"], "-t", "2", "-o", "json").stdout
    done = cli("top", "--once", "-b", two["real"], env=env)
    assert done.returncode == 0 and two["worker"].name.split("@")[0] in done.stdout, done.stderr
    assert_events_show_the_next_task(two, env, (2, 2))
