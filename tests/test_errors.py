"""Bad input: one line, a documented exit code, never a traceback, nothing lost."""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import time
import zlib

from timing import within

from services import free_port


def envelope(body: bytes, content_type="application/json", headers=None, encoding="utf-8") -> bytes:
    return json.dumps({
        "body": base64.b64encode(body).decode(), "content-encoding": encoding, "content-type": content_type,
        "headers": headers if headers is not None else {"task": "tasks.evil", "id": "evil-1"},
        "properties": {"delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": "x"},
    }).encode()


def cli(*args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "celerytool", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_unreachable_broker_exits_69_quickly_with_one_line():
    port = free_port()
    start = time.monotonic()
    p = cli("queues", "-b", f"redis://:hunter2@127.0.0.1:{port}/0")
    assert p.returncode == 69
    assert time.monotonic() - start < within(10)
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr and "hunter2" not in p.stderr
    assert "***" in p.stderr


def _serve(reply: bytes | None):
    """A TCP server on a free port that answers ``reply`` (or nothing) to anyone."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def loop():
        conns = []
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            conns.append(c)
            if reply is not None:
                try:
                    c.recv(1024)
                    c.sendall(reply)
                    c.close()
                except OSError:
                    pass

    threading.Thread(target=loop, daemon=True).start()
    return srv, srv.getsockname()[1]


def test_something_else_answering_is_69_not_a_traceback():
    srv, port = _serve(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    try:
        p = cli("peek", "celery", "-b", f"redis://127.0.0.1:{port}/0")
        assert p.returncode == 69, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    finally:
        srv.close()


def test_silent_peer_times_out_with_69():
    srv, port = _serve(None)
    try:
        start = time.monotonic()
        p = cli("queues", "-b", f"redis://127.0.0.1:{port}/0", "--connect-timeout", "1")
        assert p.returncode == 69, p.stderr
        assert time.monotonic() - start < within(20)
        assert "Traceback" not in p.stderr
    finally:
        srv.close()


def test_malformed_url_exits_2(run):
    for url in ("nonsense", "http://x", "redis://h:99999/0", "redis://h/notanumber"):
        r = run("queues", "-b", url)
        assert r.exit_code == 2, (url, r)
        assert r.stdout == ""
        assert "Traceback" not in r.stderr


def test_bad_options_exit_2(run):
    assert run("peek", "celery", "-n", "0").exit_code == 2
    assert run("peek", "celery", "-o", "xml").exit_code == 2
    assert run("queues", "--priority-steps", "a,b").exit_code == 2
    assert run("queues", "--max-size", "-3").exit_code == 2


def test_wrong_redis_key_type_exits_65(run, redis_url, redis_client):
    redis_client.hset("celery", "a", "b")
    r = run("peek", "celery", "-b", redis_url)
    assert r.exit_code == 65
    assert "hash" in r.stderr and "Traceback" not in r.stderr
    r = run("queues", "celery", "-b", redis_url)
    assert r.exit_code == 65


def test_missing_queue_exits_66(run, redis_url):
    r = run("peek", "nosuchqueue", "-b", redis_url)
    assert r.exit_code == 66
    assert "nosuchqueue" in r.stderr


def test_undecodable_messages_are_shown_and_others_go_on(run, redis_url, redis_client, celery_app):
    celery_app.send_task("tasks.ok", args=[1], task_id="ok-1")
    redis_client.lpush("celery", b"\xff\xfe not json at all")
    redis_client.lpush("celery", envelope(b"{broken json"))
    redis_client.lpush("celery", envelope(b"\x80\x04garbage", "application/x-python-serialize", encoding="binary"))
    redis_client.lpush("celery", envelope(b"[]", "application/x-unknown"))
    celery_app.send_task("tasks.ok", args=[2], task_id="ok-2")
    r = run("peek", "celery", "--all", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    rows = r.json()
    assert [m["id"] for m in rows][0] == "ok-1" and rows[-1]["id"] == "ok-2"
    errors = [m for m in rows if m["error"]]
    assert len(errors) == 4
    assert all(m["raw"] is not None for m in errors)
    assert "JSON" in errors[0]["error"]
    assert "content type" in errors[3]["error"]
    assert redis_client.llen("celery") == 6  # nothing removed


def test_hostile_pickle_is_never_executed(run, redis_url, redis_client, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for proto in range(6):
        body = pickle.dumps(((Evil(),), {}, {}), protocol=proto)
        redis_client.lpush("celery", envelope(body, "application/x-python-serialize", encoding="binary"))
    r = run("peek", "celery", "--all", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0
    assert not marker.exists()
    for m in r.json():
        assert m["error"] is None
        opaque = m["args"][0]
        assert opaque["__type__"] == "pickle"
        assert opaque["__value__"]["global"] in ("posix.system", "nt.system")
        assert opaque["__value__"]["args"] == [f"touch {marker}"]


def test_compression_bomb_is_capped(run, redis_url, redis_client):
    bomb = zlib.compress(b"[" + b"0," * 10_000_000 + b"0]", 9)  # 20 MB of JSON in ~20 KB
    assert len(bomb) < 100_000
    redis_client.lpush("celery", envelope(bomb, headers={"task": "t", "id": "bomb", "compression": "application/x-gzip"}))
    r = run("peek", "celery", "-b", redis_url, "-o", "json", "--max-size", "1M")
    assert r.exit_code == 0
    m = r.json()[0]
    assert "exceeds" in m["error"] and m["id"] == "bomb"
    r = run("peek", "celery", "-b", redis_url, "-o", "json", "--max-size", "64M")
    assert "holds more than 1048576 values" in r.json()[0]["error"]  # counted, not parsed
    r = run("peek", "celery", "-b", redis_url, "-o", "json", "--max-size", "1G")  # 16M values
    assert "not [args, kwargs, embed]" in r.json()[0]["error"]  # decoded: a list of 10M zeros


def test_yaml_alias_bomb_is_refused(run, redis_url, redis_client):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    body = ("\n".join(lines) + "\n").encode()
    redis_client.lpush("celery", envelope(body, "application/x-yaml"))
    r = run("peek", "celery", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0
    assert "expands" in r.json()[0]["error"]


def test_password_never_shown(run, redis_server, tmp_path):
    from services import start_redis

    server = start_redis(tmp_path / "auth", extra=("--requirepass", "s3cr3t-pw"))
    try:
        good = f"redis://:s3cr3t-pw@127.0.0.1:{server.port}/0"
        bad = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        assert run("queues", "-b", good).exit_code == 0
        r = run("queues", "-b", bad)
        assert r.exit_code == 69
        assert "wrong-pw" not in r.stderr and "authentication" in r.stderr.lower()
    finally:
        server.stop()


def test_errors_come_before_any_json_output(run, redis_url, redis_client):
    redis_client.set("celery", "a string")
    for args in (("peek", "celery"), ("peek", "nosuch")):
        r = run(*args, "-b", redis_url, "-o", "json")
        assert r.exit_code in (65, 66) and r.stdout == "", r


def test_lone_surrogate_in_a_pickle_still_gives_valid_json(redis_url, redis_client):
    body = pickle.dumps((("\udc80ok",), {}, {}), protocol=4)
    redis_client.lpush("celery", envelope(body, "application/x-python-serialize", encoding="binary"))
    p = cli("peek", "celery", "-b", redis_url, "-o", "ndjson")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["args"] == ["\udc80ok"]
