"""sentinel:// URLs: a real master + replica + two sentinels, and SENTINEL FAILOVER under load.

Each failover test checks what Celery users care about: the command either
finishes on the new master or stops with exit 69, and no message is lost
(counted on the new master afterwards).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from services import start_sentinel_set, wait_for

PASSWORD = "master-pw"
SENTINEL_PASSWORD = "sentinel-pw"
CLI = [sys.executable, "-m", "celerytool"]


@pytest.fixture(scope="module")
def sset(tmp_path_factory):
    s = start_sentinel_set(tmp_path_factory.mktemp("sentinel"), password=PASSWORD,
                           sentinel_password=SENTINEL_PASSWORD)
    s.wait_synced()
    yield s
    s.stop()


@pytest.fixture
def sentinel(sset):
    sset.wait_synced()  # a previous failover's old master is a synced replica again
    sset.master_client().flushall()
    return sset


def env_for(s) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERYTOOL_PROFILE")}
    env.update(CELERY_BROKER_URL=s.url(), CELERYTOOL_SENTINEL_PASSWORD=SENTINEL_PASSWORD,
               CELERYTOOL_CONFIG="/nonexistent/celerytool.toml", C_FORCE_ROOT="1")
    return env


def run(s, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env or env_for(s),
                          timeout=120, **kw)


def fill(s, count: int, tasks=("tasks.a", "tasks.b")) -> None:
    """``count`` messages on queue celery, made by Celery, the tasks taking turns."""
    from conftest import make_app

    app = make_app(f"redis://:{PASSWORD}@127.0.0.1:{s.master_port()}/0")
    try:
        with app.producer_or_acquire() as producer:
            for i in range(count):
                app.send_task(tasks[i % len(tasks)], args=[i], producer=producer)
    finally:
        app.close()


def queued(s) -> list[dict]:
    client = s.master_client()
    return [json.loads(raw) for raw in client.lrange("celery", 0, -1)]


def test_every_kind_of_command_through_sentinel(sentinel):
    sent = run(sentinel, "send", "tasks.add", "1", "2")
    assert sent.returncode == 0, sent.stderr
    task_id = sent.stdout.strip()
    queues = run(sentinel, "queues", "-o", "json")
    assert queues.returncode == 0, queues.stderr
    assert json.loads(queues.stdout) == [
        {**json.loads(queues.stdout)[0], "name": "celery", "messages": 1}]
    peek = run(sentinel, "peek", "celery", "-o", "ndjson")
    assert [json.loads(line)["id"] for line in peek.stdout.splitlines()] == [task_id]
    # the result backend through the same URL (the light RESP client asks the sentinels)
    sentinel.master_client().set(f"celery-task-meta-{task_id}", json.dumps(
        {"status": "SUCCESS", "result": 3, "task_id": task_id, "traceback": None, "children": []}))
    result = run(sentinel, "result", task_id, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["result"] == 3


def test_a_celery_worker_on_sentinel(sentinel, tmp_path):
    """A real worker configured as Celery users configure Sentinel; celerytool sends, waits for
    the result, and finds the worker, all through the sentinels."""
    from workers import EventListener, launch_worker

    options = {"master_name": sentinel.name, "sentinel_kwargs": {"password": SENTINEL_PASSWORD}}
    worker = launch_worker(sentinel.url(master_name=False), tmp_path / "worker",
                           env={"CT_TRANSPORT_OPTIONS": json.dumps(options)}, events=True)
    try:
        worker.wait_ready()
        sent = run(sentinel, "send", "worker_tasks.add", "2", "3", "--wait", "-o", "json", "--timeout", "60")
        assert sent.returncode == 0, sent.stderr
        got = json.loads(sent.stdout)
        got = got if isinstance(got, list) else [got]
        assert [(r["status"], r["result"]) for r in got] == [("SUCCESS", 5)]
        workers = run(sentinel, "workers", "-o", "json", "--timeout", "3")
        assert workers.returncode == 0, workers.stderr
        assert [w["name"] for w in json.loads(workers.stdout)] == [worker.name]
        # every live command, with the master named either way, given with -b (not the environment)
        env = {**env_for(sentinel), "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
        for spelling in (["-b", sentinel.url()], ["-b", sentinel.url(master_name=False), "--master-name",
                                                  sentinel.name]):
            for args in (["workers", "-t", "3"], ["inspect", "ping", "-t", "3"], ["inspect", "stats", "-t", "3"],
                         ["top", "--once"]):
                done = run(sentinel, *args, *spelling, "-o", "json", env=env)
                assert done.returncode == 0, (args, spelling, done.stderr)
                assert worker.name in done.stdout, (args, done.stdout)
            revoked_id = str(uuid.uuid4())
            done = run(sentinel, "revoke", revoked_id, "-y", "-t", "3", *spelling, "-o", "json", env=env)
            assert done.returncode == 0 and worker.name in done.stdout, (spelling, done.stderr)
            done = run(sentinel, "inspect", "revoked", "-t", "3", *spelling, "-o", "json", env=env)
            assert revoked_id in done.stdout, (spelling, done.stdout)
            probe = EventListener(sentinel.master_client())
            events = subprocess.Popen([*CLI, "events", *spelling, "-n", "1", "--type", "task-received", "-t", "30"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            try:
                wait_for(probe.ready, 20)
                sent = run(sentinel, "send", "worker_tasks.add", "1", "1", *spelling, env=env)
                assert sent.returncode == 0, sent.stderr
                out, err = events.communicate(timeout=40)
            finally:
                events.kill()
            assert events.returncode == 0, err
            assert json.loads(out.splitlines()[0])["uuid"] == sent.stdout.strip()
    finally:
        worker.stop()


def test_master_name_from_option_and_passwords_never_shown(sentinel):
    env = env_for(sentinel)
    env["CELERY_BROKER_URL"] = sentinel.url(master_name=False)
    missing = run(sentinel, "queues", env=env)
    assert missing.returncode == 2 and "--master-name" in missing.stderr
    ok = run(sentinel, "queues", "--master-name", sentinel.name, env=env)
    assert ok.returncode == 0, ok.stderr
    ok = run(sentinel, "peek", "celery", env={**env, "CELERYTOOL_MASTER_NAME": sentinel.name})
    assert ok.returncode == 66, ok.stderr  # it got as far as the master: no such queue
    tls = run(sentinel, "queues", env={**env, "CELERY_BROKER_URL": sentinel.url() + "&ssl=true"})
    assert tls.returncode == 2 and "TLS" in tls.stderr
    wrong = run(sentinel, "queues", "--master-name", "nope", env=env)
    assert wrong.returncode == 66 and "nope" in wrong.stderr
    env.pop("CELERYTOOL_SENTINEL_PASSWORD")
    refused = run(sentinel, "peek", "celery", "--master-name", sentinel.name, env=env)
    assert refused.returncode == 69
    for text in (missing.stderr, wrong.stderr, refused.stderr):
        assert PASSWORD not in text and SENTINEL_PASSWORD not in text
    env["CELERY_BROKER_URL"] = "sentinel://127.0.0.1:1/0;sentinel://127.0.0.1:2/0?master_name=x"
    down = run(sentinel, "queues", env=env)
    assert down.returncode == 69 and "127.0.0.1:2" in down.stderr


def test_failover_during_peek_all(sentinel, tmp_path):
    n = 6000
    fill(sentinel, n)
    old = sentinel.master_port()
    errors = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen([*CLI, "peek", "celery", "--all", "-o", "ndjson"], env=env_for(sentinel),
                            stdout=subprocess.PIPE, stderr=errors, text=True)
    lines = [proc.stdout.readline() for _ in range(50)]  # it is mid-queue, held by the pipe
    assert proc.poll() is None
    new = sentinel.failover(old)
    assert new != old
    # the old master drops its clients, as a failed one would: peek must go to the new one
    import redis

    redis.Redis(port=old, password=PASSWORD).client_kill_filter(_type="normal", skipme=True)
    lines += proc.stdout.read().splitlines(keepends=True)
    proc.wait(120)
    errors.seek(0)
    assert proc.returncode == 0, errors.read()
    ids = [json.loads(line)["id"] for line in lines]
    assert ids == [m["headers"]["id"] for m in reversed(queued(sentinel))]
    assert len(ids) == n


def test_failover_during_send_from(sentinel, tmp_path):
    n = 20_000
    ids = [f"id-{i:06d}" for i in range(n)]
    lines = [json.dumps({"task": "tasks.add", "args": [i, 1], "options": {"task_id": ids[i]}}) + "\n"
             for i in range(n)]
    proc = subprocess.Popen([*CLI, "--connect-timeout", "2", "send", "--from", "-", "-o", "ndjson"],
                            env=env_for(sentinel), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout))
    reader.start()
    proc.stdin.write("".join(lines[: n // 2]))
    proc.stdin.flush()
    wait_for(lambda: sentinel.master_client().llen("celery") >= n // 2, 60)
    sentinel.failover()  # the old master still takes writes for seconds: they would be lost
    try:
        proc.stdin.write("".join(lines[n // 2:]))
        proc.stdin.close()
    except BrokenPipeError:  # it stopped (exit 69): what it reported is checked below
        pass
    proc.wait(120)
    reader.join(10)
    err = proc.stderr.read()
    reported = [json.loads(line)["id"] for line in out]
    present = {m["headers"]["id"] for m in queued(sentinel)}
    assert set(reported) <= present, "a task reported as sent is not on the new master"
    assert proc.returncode in (0, 69), err
    if proc.returncode == 0:
        assert present == set(ids)
        assert "retry" in err  # the failover was seen, and survived
    sentinel.wait_synced()
    assert {m["headers"]["id"] for m in queued(sentinel)} >= set(reported)


def test_failover_during_filtered_purge(sentinel):
    import redis

    n = 4000
    fill(sentinel, n)
    before = queued(sentinel)
    keep = [m["headers"]["id"] for m in before if m["headers"]["task"] == "tasks.b"]
    old = sentinel.master_port()
    # writes (the purge's scripts) wait on the old master while the replica is promoted
    redis.Redis(port=old, password=PASSWORD).execute_command("CLIENT", "PAUSE", 6000, "WRITE")
    proc = subprocess.Popen([*CLI, "--connect-timeout", "2", "purge", "celery", "--task", "tasks.a",
                             "--yes"], env=env_for(sentinel), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    paused = redis.Redis(port=old, password=PASSWORD, decode_responses=True)
    wait_for(lambda: proc.poll() is not None
             or any(c.get("cmd") in ("lrange", "evalsha") for c in paused.client_list()), 60)
    assert proc.poll() is None, proc.communicate()
    new = sentinel.failover(old)  # while the purge's first script waits
    assert new != old
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 69), err
    sentinel.wait_synced()
    after = queued(sentinel)
    kept_ids = [m["headers"]["id"] for m in after if m["headers"]["task"] == "tasks.b"]
    assert sorted(kept_ids) == sorted(keep), "a message that was not selected is gone"
    removed = n - len(after)
    if proc.returncode == 0:  # walked again on the new master, or done before the promotion
        assert removed == n // 2
        # on a loaded machine the master's pause (6 s) can end before the sentinels promote the
        # replica: the purge then finishes on the old master, which is a valid outcome too
        print("walked again after the failover" if "walked 'celery' again" in err
              else "the purge finished before the failover")
    else:
        assert "not counted" in err or "failover" in err
        assert 0 <= removed <= n // 2


def test_sentinel_url_in_a_profile(sentinel, tmp_path: Path):
    config = tmp_path / "config.toml"
    config.write_text(
        "[profiles.ha]\n"
        f"broker = \"sentinel://127.0.0.1:{sentinel.sentinels[0].port}/0;"
        f"sentinel://127.0.0.1:{sentinel.sentinels[1].port}/0\"\n"
        f"master_name = \"{sentinel.name}\"\n"
        "password_env = \"HA_PW\"\n"
        "sentinel_password_command = \"printf %s $HA_SENTINEL_PW\"\n")
    env = env_for(sentinel)
    for var in ("CELERY_BROKER_URL", "CELERYTOOL_SENTINEL_PASSWORD"):
        env.pop(var)
    env.update(CELERYTOOL_CONFIG=str(config), HA_PW=PASSWORD, HA_SENTINEL_PW=SENTINEL_PASSWORD)
    sent = run(sentinel, "send", "-P", "ha", "tasks.add", "1", "2", env=env)
    assert sent.returncode == 0, sent.stderr
    assert [m["headers"]["id"] for m in queued(sentinel)] == [sent.stdout.strip()]
