"""Hostile remote-control replies and unparsable events (issue 16, item 5), on a real Redis with a
real ``celery worker`` next to a hostile one written with kombu (tests/hostile.py); the real
worker's answers are checked against what it says of itself (its pid, its queue).

One bad reply or event fails alone: the real worker's answers are shown, the bad one is reported
on stderr, nothing grows past the decoding limits, nothing stops listening.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import subprocess
import sys
import time
import uuid

import pytest
from hostile import HostileWorker

from conftest import make_app
from services import start_redis, wait_for
from workers import start_worker

MEMORY_CAP = 1536 * 1024 * 1024  # a command that expands a bomb dies here instead of taking the machine


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("hostile-redis"))
    url = server.url(0)
    worker = None
    try:
        worker = start_worker(url, tmp_path_factory.mktemp("hostile-worker"), queues="qh", events=True,
                              prefix="good")
        yield {"url": url, "worker": worker}
    finally:
        if worker:
            worker.stop(wait=5)
        server.stop()


@pytest.fixture
def hostile(live):
    started = []

    def start(answer, name=None):
        h = HostileWorker(live["url"], answer, name)
        h.start()
        assert h.ready.wait(10)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


def cli(*args, timeout=60):
    """celerytool in a child process with a memory cap (a bomb must not take the machine)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_OUTPUT")}

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], env=env, text=True,
                          capture_output=True, timeout=timeout, preexec_fn=cap)


def reply_of(name, value, content_type="application/json"):
    if content_type == "application/x-yaml":
        import yaml

        return yaml.safe_dump({name: value}).encode(), content_type
    return json.dumps({name: value}).encode(), content_type


def yaml_bomb(name):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    body = "\n".join(f"  {line}" for line in lines)
    return f"{json.dumps(name)}:\n{body}\n".encode(), "application/x-yaml"


def good_stats(out, live):
    rows = json.loads(out)
    mine = [r for r in rows if r["worker"] == live["worker"].name]
    assert len(mine) == 1, rows
    assert mine[0]["pid"] == live["worker"].proc.pid  # what the real worker said about itself
    return rows


def test_yaml_alias_bomb_reply_is_refused_and_the_good_worker_shown(live, hostile):
    h = hostile(lambda method: yaml_bomb("bomb@localhost"))
    r = cli("inspect", "stats", "-b", live["url"], "-o", "json", "-t", "3")
    assert r.returncode == 0, r.stderr
    rows = good_stats(r.stdout, live)
    assert "bomb@localhost" not in {row["worker"] for row in rows}
    assert "a worker reply could not be decoded" in r.stderr and "yaml" in r.stderr
    assert "stats" in h.asked
    w = cli("workers", "-b", live["url"], "-o", "json", "-t", "3")
    assert w.returncode == 0, w.stderr
    online = {x["name"]: x for x in json.loads(w.stdout) if x["status"] == "online"}
    assert online[live["worker"].name]["pid"] == live["worker"].proc.pid
    assert "bomb@localhost" not in online


@pytest.mark.parametrize("value", ["str", 7, ["q"]], ids=["str", "int", "list"])
def test_replies_of_the_wrong_type_are_left_out_with_a_warning(live, hostile, value):
    name = f"wrong-{uuid.uuid4().hex[:6]}@localhost"
    hostile(lambda method: reply_of(name, value))
    w = cli("workers", "-b", live["url"], "-o", "json", "-t", "3")
    assert w.returncode == 0, w.stderr
    rows = {x["name"]: x for x in json.loads(w.stdout)}
    assert rows[live["worker"].name]["status"] == "online"
    assert rows[live["worker"].name]["queues"] == ["qh"]
    assert f"{name} answered" in w.stderr
    for what in ("stats", "active-queues", "registered", "revoked", "active", "conf"):
        r = cli("inspect", what, "-b", live["url"], "-o", "json", "-t", "3")
        assert r.returncode == 0, (what, r.stderr)
        assert live["worker"].name in {row["worker"] for row in json.loads(r.stdout)} or what in (
            "revoked", "active"), (what, r.stdout)
        assert "Traceback" not in r.stderr


def _deep_json(name):
    return (b'{"' + name.encode() + b'": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "application/json")


@pytest.mark.parametrize("kind", ["pickle", "non-utf8", "deep-json"])
def test_one_undecodable_reply_does_not_void_the_others(live, hostile, kind):
    name = f"bad-{uuid.uuid4().hex[:6]}@localhost"
    body = {
        "pickle": lambda: (pickle.dumps({name: {"pid": 1}}), "application/x-python-serialize"),
        "non-utf8": lambda: (b'{"' + name.encode() + b'": {"pid": "\xff\xfe"}}', "application/json"),
        "deep-json": lambda: _deep_json(name),
    }[kind]()
    hostile(lambda method: body)
    r = cli("inspect", "stats", "-b", live["url"], "-o", "json", "-t", "3")
    assert r.returncode == 0, r.stderr
    rows = good_stats(r.stdout, live)
    assert name not in {row["worker"] for row in rows}
    assert "a worker reply could not be decoded" in r.stderr
    assert "Traceback" not in r.stderr


def test_terminal_escapes_in_stats_keys_are_shown_escaped(live, hostile):
    name = f"esc-{uuid.uuid4().hex[:6]}@localhost"
    hostile(lambda method: reply_of(name, {"\x1b]0;pwned\x07title": 1, "\x1b[2Jclear": {"\x1b[31mred": 2}}),
            name)
    r = cli("inspect", "stats", "-b", live["url"], "-o", "table", "-t", "3", "-d", name)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b]0;pwned\\x07title" in r.stdout


def _listening(url):
    import redis

    client = redis.Redis.from_url(url)
    try:
        return any(b"celerytool" in row for row in client.smembers("_kombu.binding.celeryev"))
    finally:
        client.close()


@pytest.mark.parametrize("raw", [b"[" * 200_000, b'{"body": 5}'], ids=["deep", "no-fields"])
def test_an_event_the_transport_cannot_parse_is_skipped(live, raw):
    """Redis events are PUBLISHed texts that kombu parses as its JSON envelope before any
    decoder runs: one that is not an envelope must not end the stream either."""
    import redis

    url = live["url"]
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_OUTPUT")}
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", "events", "-b", url, "-n", "1",
                             "--type", "task-succeeded", "--timeout", "60"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _listening(url), timeout=20)
        client = redis.Redis.from_url(url)
        # kombu's fanout on Redis: PSUBSCRIBE /{db}.{exchange}/* (fanout_patterns); a PUBLISH that
        # reached no one (the subscription not yet in place) is simply sent again
        wait_for(lambda: client.publish("/0.celeryev/task.hostile", raw) == 1, timeout=20)
        client.close()
        app = make_app(url)
        good = str(uuid.uuid4())
        # the good event again until it is received: one PUBLISH may fall in the moment the
        # stream takes to read on after the hostile one (pub/sub keeps nothing for later)
        with app.connection_for_write() as conn:
            dispatcher = app.events.Dispatcher(conn, hostname="good@localhost", enabled=True)
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                dispatcher.send("task-succeeded", uuid=good, result="4", runtime=0.1)
                time.sleep(0.5)
            dispatcher.close()
        app.close()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["uuid"] for line in out.splitlines() if line.strip()] == [good]
    assert "skipped a malformed event: an unreadable event" in err
    assert "Traceback" not in err
