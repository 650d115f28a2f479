"""decode: envelopes, unacked entries, bare bodies and redis-cli's quoted form, offline."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys

import pytest


@pytest.fixture
def stored(redis_client, celery_app):
    """One real message as Redis holds it, plus what Celery was asked to send."""
    def _make(**options):
        redis_client.delete("celery")
        celery_app.send_task("tasks.add", args=[2, 3], kwargs={"z": "é"}, task_id="dec-1", **options)
        return redis_client.lindex("celery", -1) or redis_client.lindex("celery\x06\x163", -1)
    return _make


def test_decode_envelope_from_stdin(run, stored):
    raw = stored(compression="bzip2", serializer="msgpack")
    r = run("decode", "-o", "json", input=raw)
    assert r.exit_code == 0, r
    m = r.json()
    assert (m["id"], m["task"], m["args"], m["kwargs"]) == ("dec-1", "tasks.add", [2, 3], {"z": "é"})
    assert m["compression"] == "application/x-bz2"


def test_decode_file_and_redis_cli_quoted_form(run, stored, redis_url, tmp_path):
    raw = stored(serializer="pickle", compression="zlib")
    path = tmp_path / "m.json"
    path.write_bytes(raw)
    assert run("decode", str(path), "-o", "json").json()["args"] == [2, 3]
    port = redis_url.split(":")[2].split("/")[0]
    quoted = subprocess.run(["redis-cli", "-p", port, "LINDEX", "celery", "-1"], capture_output=True).stdout
    if not quoted:  # redis-cli missing: build its quoting the way it does
        pytest.skip("redis-cli not installed")
    r = run("decode", "-o", "json", input=quoted)
    assert r.json()["id"] == "dec-1"


def test_decode_bare_bodies(run, stored):
    env = json.loads(stored())
    r = run("decode", "-o", "json", input=env["body"])  # base64 text, as in the envelope
    m = r.json()
    assert m["args"] == [2, 3] and m["kwargs"] == {"z": "é"} and m["protocol"] == 2
    plain = base64.b64decode(env["body"])
    assert run("decode", "-o", "json", input=plain).json()["args"] == [2, 3]


def test_decode_pickle_file_forced_type(run, tmp_path):
    body = pickle.dumps(((1, "x"), {"k": 2}, {"callbacks": None}), protocol=2)
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    r = run("decode", str(f), "--content-type", "pickle", "-o", "json")
    assert r.json()["args"] == [1, "x"] and r.json()["kwargs"] == {"k": 2}


@pytest.mark.parametrize("serializer, compression, forced", [
    ("pickle", None, ["--content-type", "pickle"]),
    ("msgpack", None, ["--content-type", "application/x-msgpack"]),
    ("json", "zlib", ["--compression", "zlib"]),
    ("pickle", "bzip2", ["--content-type", "pickle", "--compression", "bzip2"]),
])
def test_decode_base64_body_with_a_forced_type(run, stored, serializer, compression, forced):
    """The body field of a real envelope (base64 text), with its type or compression given."""
    env = json.loads(stored(serializer=serializer, **({"compression": compression} if compression else {})))
    r = run("decode", *forced, "-o", "json", input=env["body"])
    assert r.exit_code == 0, r
    assert (r.json()["args"], r.json()["kwargs"]) == ([2, 3], {"z": "é"})


def test_decode_unacked_entry(run, stored):
    env = json.loads(stored())
    entry = json.dumps([env, "", "celery"])
    m = run("decode", "-o", "json", input=entry).json()
    assert m["id"] == "dec-1" and m["routing_key"] == "celery"


def test_decode_lines(run, stored, celery_app, redis_client):
    stored()
    celery_app.send_task("tasks.mul", args=[4], task_id="dec-2")
    lines = b"\n".join(redis_client.lrange("celery", 0, -1)) + b"\n"
    r = run("decode", "--lines", "-o", "ndjson", input=lines)
    assert sorted(m["id"] for m in r.ndjson()) == ["dec-1", "dec-2"]


def test_decode_garbage_exits_65_and_shows_raw(run):
    r = run("decode", "-o", "json", input=b"\x00\x01 nothing here")
    assert r.exit_code == 65
    assert r.json()["error"] and r.json()["raw"]


def test_decode_nothing_is_usage_error(run):
    assert run("decode", input=b"").exit_code == 2


def test_python_dash_m_works():
    p = subprocess.run([sys.executable, "-m", "celerytool", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and "celerytool" in p.stdout


def test_stored_meta_fields_land_in_their_task_result_fields():
    """result_from_meta builds TaskResult by position: each stored field must reach its own."""
    import dataclasses

    from celerytool.backends.decode import result_from_meta
    from celerytool.codecs.limits import DEFAULT_LIMITS
    from celerytool.model import TaskResult

    meta = {"status": "FAILURE", "result": {"exc_type": "KeyError", "exc_module": "builtins",
                                            "exc_message": ["k"]},
            "traceback": "Traceback ...", "date_done": "2026-01-02T03:04:05", "children": [["c", None]],
            "name": "tasks.n", "args": [1], "kwargs": {"a": 2}, "worker": "w@h", "retries": 3,
            "queue": "q", "group_id": "g", "parent_id": "p"}
    r = result_from_meta("the-id", json.dumps(meta).encode(), DEFAULT_LIMITS)
    expected = TaskResult(id="the-id", status="FAILURE", result=meta["result"], traceback="Traceback ...",
                          date_done="2026-01-02T03:04:05", children=[["c", None]], name="tasks.n", args=[1],
                          kwargs={"a": 2}, worker="w@h", retries=3, queue="q", group_id="g", parent_id="p",
                          exception={"type": "KeyError", "module": "builtins", "message": "k"}, group=False,
                          error=None, meta=meta)
    assert dataclasses.asdict(r) == dataclasses.asdict(expected)
