"""Hostile single messages cost bounded time and memory (issue 9: denial of service).

Each bomb runs in a subprocess that reports its own peak memory (VmHWM) and whose
address space is capped, so a regression fails here instead of taking the shared
machine's memory.
"""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import pytest

MAX_RSS_MB = 250  # celerytool with kombu imported is ~60 MB
MAX_SECONDS = 15
AS_CAP = 2 << 30  # address space: a failing run stops here, not in the machine's swap

LAUGHS = b"\x80\x02]" + b"2\x86" * 40 + b"\x85}}\x87."  # DUP / TUPLE2, no memo: 2**40 leaves
BYTEARRAY = b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00\x40\x85R."  # bytearray(1 << 30)
BYTES_NEWOBJ = b"\x80\x02cbuiltins\nbytes\nJ\x00\x00\x00\x40\x85\x81."  # bytes.__new__(bytes, 1 << 30)
BIG_INT = pickle.dumps(((10**10000,), {}, {}), 2)
MEMO_INDEX = b"\x80\x02Nr\xff\xff\xff\x7f."  # LONG_BINPUT 2**31: the C memo would take 16 GiB
MEMO_TEXT = b"Np999_999_999\n."  # PUT, protocol 0: a text index, read by int()
DEEP_PICKLE = b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."  # lists nested 100,000 deep
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
PICKLE_BOMBS = {"laughs": LAUGHS, "bytearray": BYTEARRAY, "bytes-newobj": BYTES_NEWOBJ,
                "big-int": BIG_INT, "memo-index": MEMO_INDEX, "memo-text": MEMO_TEXT, "deep": DEEP_PICKLE}
EXPECTED_ERROR = {"laughs": "expands to more than", "bytearray": "over the size limit",
                  "bytes-newobj": "over the size limit", "big-int": "more than 4300 digits",
                  "memo-index": "memo index", "memo-text": "memo index", "deep": "nests more than"}


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


# Runs celerytool in the child with its address space capped, and writes the child's own
# peak RSS (VmHWM: its memory after exec, not the forking test process's) when it exits.
RUNNER = """
import atexit, resource, runpy, sys
cap, report = int(sys.argv[1]), sys.argv[2]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
def hwm():
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(report, "w") as f:
        f.write(str(kb))
atexit.register(hwm)
sys.argv = ["celerytool", *sys.argv[3:]]
runpy.run_module("celerytool", run_name="__main__", alter_sys=True)
"""


def measured(*args: str, stdin: bytes = b"", timeout: float = MAX_SECONDS + 5) -> Measured:
    """Run celerytool in a subprocess; its own wall time and peak RSS."""
    with tempfile.TemporaryFile() as i, tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e, \
            tempfile.NamedTemporaryFile("r") as report:
        i.write(stdin)
        i.seek(0)
        start = time.monotonic()
        p = subprocess.Popen([sys.executable, "-c", RUNNER, str(AS_CAP), report.name, *args],
                             stdin=i, stdout=o, stderr=e)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        seconds = time.monotonic() - start
        peak_kb = report.read().strip()
        # killed before it could say: its whole cap is what it may have taken
        peak_mb = int(peak_kb) / 1024 if peak_kb else AS_CAP / 2**20
        o.seek(0)
        e.seek(0)
        return Measured(p.returncode, o.read().decode("utf-8", "replace"),
                        e.read().decode("utf-8", "replace"), seconds, peak_mb)


def assert_bounded(m: Measured, what: str) -> None:
    print(f"{what}: {m.seconds:.2f} s, peak {m.max_rss_mb:.0f} MB, exit {m.returncode}")
    assert m.seconds < MAX_SECONDS, (what, m)
    assert m.max_rss_mb < MAX_RSS_MB, (what, m)
    assert "internal error" not in m.stderr and "Traceback" not in m.stderr, (what, m.stderr[-2000:])


def raw_bytes(tagged: dict) -> bytes:
    value = tagged["__value__"]
    return base64.b64decode(value) if tagged["__type__"] == "base64" else value.encode("utf-8")


def envelope(body: bytes, content_type: str, task_id: str, encoding: str = "binary") -> bytes:
    return json.dumps({
        "body": base64.b64encode(body).decode(), "content-encoding": encoding, "content-type": content_type,
        "headers": {"lang": "py", "task": "tasks.bomb", "id": task_id},
        "properties": {"delivery_info": {"exchange": "", "routing_key": "celery"}, "priority": 0,
                       "body_encoding": "base64", "delivery_tag": task_id},
    }).encode()


# --- decode ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PICKLE_BOMBS))
def test_decode_pickle_bombs_exit_65_bounded(name):
    m = measured("decode", "--content-type", "pickle", "-o", "json", stdin=PICKLE_BOMBS[name])
    assert_bounded(m, f"decode {name}")
    assert m.returncode == 65, m
    out = json.loads(m.stdout)
    assert EXPECTED_ERROR[name] in out["error"]
    assert raw_bytes(out["raw"]) == PICKLE_BOMBS[name]  # the raw bytes are shown


def test_decode_deep_json_exit_65_bounded():
    m = measured("decode", "-o", "json", stdin=DEEP_JSON)
    assert_bounded(m, "decode deep json")
    assert m.returncode == 65, m
    assert "nests more than 500 levels" in json.loads(m.stdout)["error"]


def test_decode_deep_json_inside_an_envelope():
    m = measured("decode", "-o", "json", stdin=envelope(DEEP_JSON, "application/json", "deep", "utf-8"))
    assert_bounded(m, "decode deep json envelope")
    assert m.returncode == 65
    out = json.loads(m.stdout)
    assert out["id"] == "deep" and "nests more than" in out["error"]


MANY = 3_000_000  # empty lists: about 190 MB parsed, more than the values limit
VALUE_BOMBS = {
    "json": (b"[" + b"[]," * MANY + b"[]]", "json"),
    "msgpack": (b"\xdd" + MANY.to_bytes(4, "big") + b"\x90" * MANY, "msgpack"),
    "yaml": (b"[" + b"[]," * MANY + b"[]]", "yaml"),
}


@pytest.mark.parametrize("name", sorted(VALUE_BOMBS))
def test_bodies_with_millions_of_values_are_counted_not_parsed(name):
    body, content_type = VALUE_BOMBS[name]
    m = measured("decode", "--content-type", content_type, "-o", "json", stdin=body)
    assert_bounded(m, f"decode {name} with {MANY} values")
    assert m.returncode == 65, m
    assert "more than" in json.loads(m.stdout)["error"] and "values" in json.loads(m.stdout)["error"]


def test_limits_let_ordinary_big_values_through():
    from celerytool.codecs.inert_pickle import inert_loads
    from celerytool.codecs.serializers import loads_json

    value = ([bytearray(b"x" * 1000), bytes(10), 10**4000, -(10**4000)], {"k": [[[[1]]]] * 1000}, {})
    assert inert_loads(pickle.dumps(value, 2)) == value
    assert inert_loads(pickle.dumps(value, 5)) == value
    nested = json.loads("[" * 400 + "]" * 400)
    assert loads_json("[" * 400 + "]" * 400) == nested
    many = list(range(900_000))  # under the values limit, in a text longer than it
    assert loads_json(json.dumps(many)) == many
    text = json.dumps(["a,b,c:d[{" * 100_000] * 3)  # punctuation inside strings is not counted
    assert loads_json(text) == json.loads(text)


def test_import_file_with_a_deep_line_exits_65(tmp_path, redis_url):
    path = tmp_path / "deep.ndjson"
    path.write_bytes(b'{"queue": "q", "raw": ' + DEEP_JSON + b"}\n")
    m = measured("import", str(path), "q", "-b", redis_url, "--yes")
    if "no such option" in m.stderr.lower():  # import --yes lands with another change
        m = measured("import", str(path), "q", "-b", redis_url)
    assert_bounded(m, "import deep line")
    assert m.returncode == 65, m
    assert "deep.ndjson:1" in m.stderr


# --- peek, purge and export on a real Redis: the bomb shown with its error, the others go on --

def _fill(redis_client, celery_app) -> list[str]:
    celery_app.send_task("tasks.ok", args=[1], task_id="ok-first")
    for name, body in sorted(PICKLE_BOMBS.items()):
        redis_client.lpush("celery", envelope(body, "application/x-python-serialize", name))
    redis_client.lpush("celery", envelope(DEEP_JSON, "application/json", "deep-json", "utf-8"))
    celery_app.send_task("tasks.ok", args=[1], task_id="ok-last")
    return ["ok-first", *sorted(PICKLE_BOMBS), "deep-json", "ok-last"]


def test_peek_shows_bombs_with_error_and_raw_and_goes_on(redis_url, redis_client, celery_app):
    order = _fill(redis_client, celery_app)
    m = measured("peek", "celery", "--all", "-b", redis_url, "-o", "json")
    assert_bounded(m, "peek")
    assert m.returncode == 0, m
    rows = json.loads(m.stdout)
    assert [r["id"] for r in rows] == order
    for r in rows:
        assert (r["error"] is None) == r["id"].startswith("ok-"), r
        if r["error"]:
            assert r["raw"] is not None
            assert EXPECTED_ERROR.get(r["id"], "nests more than") in r["error"]
    m = measured("peek", "celery", "--all", "-b", redis_url)  # the table too
    assert_bounded(m, "peek table")
    assert m.returncode == 0 and "ok-last" in m.stdout


def test_selected_purge_is_bounded_and_keeps_the_bombs(redis_url, redis_client, celery_app):
    _fill(redis_client, celery_app)
    m = measured("purge", "celery", "--where", "args[0] == 1", "-y", "-b", redis_url)
    assert_bounded(m, "purge --where")
    assert m.returncode == 0, m
    left = [json.loads(raw)["headers"]["id"] for raw in redis_client.lrange("celery", 0, -1)]
    assert sorted(left) == sorted([*PICKLE_BOMBS, "deep-json"])  # only the two ok-* matched


def test_export_writes_every_message_bombs_included(redis_url, redis_client, celery_app, tmp_path):
    order = _fill(redis_client, celery_app)
    out = tmp_path / "export.ndjson"
    m = measured("export", "celery", "-b", redis_url, "--file", str(out))
    assert_bounded(m, "export")
    assert m.returncode == 0, m
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == order
    bomb = next(x for x in lines if x["id"] == "big-int")
    assert "more than 4300 digits" in bomb["error"]


def test_a_deep_envelope_is_shown_and_moved_unchanged(run, redis_url, redis_client, celery_app):
    celery_app.send_task("tasks.ok", args=[1], task_id="ok-1")
    redis_client.lpush("celery", DEEP_JSON)  # not even an envelope: nested 100,000 deep
    r = run("peek", "celery", "--all", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    assert [m["id"] for m in r.json()] == ["ok-1", None]
    assert "nests more than 500 levels" in r.json()[1]["error"]
    r = run("move", "celery", "other", "-y", "-b", redis_url)
    assert r.exit_code == 0, r
    assert redis_client.lrange("other", 0, 0) == [DEEP_JSON]


def test_rabbitmq_peek_shows_bombs_and_goes_on(amqp_url, pika_channel, amqp_celery_app):
    import pika
    from amqp_helpers import depth, wait_for

    pika_channel.queue_declare("celery", durable=True)
    amqp_celery_app.send_task("tasks.ok", args=[1], task_id="ok-first")
    wait_for(lambda: depth(pika_channel, "celery") == 1)  # two connections: keep the order
    for name, body in sorted(PICKLE_BOMBS.items()):
        pika_channel.basic_publish("", "celery", body, pika.BasicProperties(
            content_type="application/x-python-serialize", content_encoding="binary",
            headers={"lang": "py", "task": "tasks.bomb", "id": name}))
    wait_for(lambda: depth(pika_channel, "celery") == len(PICKLE_BOMBS) + 1)
    amqp_celery_app.send_task("tasks.ok", args=[1], task_id="ok-last")
    wait_for(lambda: depth(pika_channel, "celery") == len(PICKLE_BOMBS) + 2)
    m = measured("peek", "celery", "--all", "-b", amqp_url, "-o", "json")
    assert_bounded(m, "peek RabbitMQ")
    assert m.returncode == 0, m
    rows = json.loads(m.stdout)
    assert [r["id"] for r in rows] == ["ok-first", *sorted(PICKLE_BOMBS), "ok-last"]
    for r in rows[1:-1]:
        assert EXPECTED_ERROR[r["id"]] in r["error"], r
    assert depth(pika_channel, "celery") == len(PICKLE_BOMBS) + 2  # peek changed nothing


def test_result_and_results_show_bombs_bounded(redis_url, redis_client):
    bombs = {name: body for name, body in PICKLE_BOMBS.items() if body[:1] == b"\x80"}  # read as pickle
    for name, body in bombs.items():
        redis_client.set(f"celery-task-meta-{name}", body)
    m = measured("results", "-b", redis_url, "-o", "json", "-n", "100")
    assert_bounded(m, "results")
    assert m.returncode == 0, m
    rows = {r["id"]: r for r in json.loads(m.stdout)}
    assert set(rows) == set(bombs)
    for name, r in rows.items():
        assert EXPECTED_ERROR[name] in r["error"], r
    m = measured("result", "laughs", "-b", redis_url)
    assert_bounded(m, "result")
    assert "expands to more than" in m.stdout
