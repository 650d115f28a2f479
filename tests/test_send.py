"""celerytool send: the same bytes as Celery's send_task, routing as kombu, a real worker runs them."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
import redis
from timing import within

from conftest import clean_db_url, make_app
from services import free_port, start_redis, wait_for
from workers import worker_on_db

UTC = dt.timezone.utc
TID = "11111111-2222-4333-8444-555555555555"


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker(redis_server, tmp_path_factory):
    with worker_on_db(redis_server, tmp_path_factory, 1) as w:
        yield w


@pytest.fixture
def wurl(worker):
    client = redis.Redis.from_url(worker.broker_url)
    client.delete("ct:record")
    client.close()
    return worker.broker_url


@pytest.fixture
def wclient(wurl):
    client = redis.Redis.from_url(wurl)
    yield client
    client.close()


@pytest.fixture
def url2(redis_server):
    """A clean db 2 (not flushall: the module's worker lives in db 1)."""
    return clean_db_url(redis_server, 2)


@pytest.fixture
def client2(url2):
    client = redis.Redis.from_url(url2)
    yield client
    client.close()


def records(client):
    return [json.loads(x) for x in client.lrange("ct:record", 0, -1)]


def lists(client):
    """{list key: [raw items, next first]} of every list in the db."""
    out = {}
    for key in client.scan_iter():
        if client.type(key) == b"list":
            out[key] = list(reversed(client.lrange(key, 0, -1)))
    return out




# -- the same message as Celery ------------------------------------------------------------
ETA = dt.datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
EXPIRES = dt.datetime(2031, 1, 2, 12, 0, tzinfo=UTC)

CASES = {
    "plain": ({}, {}, []),
    "everything": (
        {},
        dict(eta=ETA, expires=EXPIRES, priority=5, time_limit=30, soft_time_limit=20,
             headers={"custom_h": "v"}, queue="other", link="tasks.cb", link_error="tasks.err"),
        ["--eta", ETA.isoformat(), "--expires", EXPIRES.isoformat(), "--priority", "5",
         "--time-limit", "30", "--soft-time-limit", "20", "--header", "custom_h=v", "--queue", "other",
         "--link", "tasks.cb", "--link-error", "tasks.err"],
    ),
    "msgpack+zlib": ({}, dict(serializer="msgpack", compression="zlib"),
                     ["--serializer", "msgpack", "--compression", "zlib"]),
    "pickle+bzip2": ({}, dict(serializer="pickle", compression="bzip2"),
                     ["--serializer", "pickle", "--compression", "bzip2"]),
    "yaml+zstd": ({}, dict(serializer="yaml", compression="zstd", priority=9),
                  ["--serializer", "yaml", "--compression", "zstd", "--priority", "9"]),
    "protocol1": ({"task_protocol": 1}, dict(eta=ETA, priority=3), ["--protocol", "1", "--eta", ETA.isoformat(), "--priority", "3"]),
    "keyprefix": ({"broker_transport_options": {"global_keyprefix": "pfx:"}}, {}, ["--keyprefix", "pfx:"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_bytes_as_celery_send_task(run, redis_server, case):
    conf, celery_opts, cli_opts = CASES[case]
    # a db of its own per case: Celery declares a queue once per pooled connection (per URL)
    url2 = redis_server.url(4 + list(CASES).index(case))
    client2 = redis.Redis.from_url(url2)
    client2.flushdb()
    app = make_app(url2, **conf)
    opts = dict(celery_opts)
    for key in ("link", "link_error"):
        if key in opts:
            opts[key] = app.signature(opts[key])
    app.send_task("tasks.add", args=(2, 3), kwargs={"z": 1}, task_id=TID, **opts)
    theirs = lists(client2)
    their_sets = {k: client2.smembers(k) for k in client2.scan_iter() if client2.type(k) == b"set"}
    app.close()
    client2.flushdb()

    r = run("send", "tasks.add", "2", "3", "-k", "z=1", "--id", TID, "-b", url2, *cli_opts)
    assert r.exit_code == 0, r
    assert r.stdout == TID + "\n"
    ours = lists(client2)
    our_sets = {k: client2.smembers(k) for k in client2.scan_iter() if client2.type(k) == b"set"}

    assert list(ours) == list(theirs)  # the same priority list (key) ...
    assert our_sets == their_sets  # ... and the same binding tables
    (key,) = ours
    our_raw, their_raw = ours[key][0].decode(), theirs[key][0].decode()
    our_env, their_env = json.loads(our_raw), json.loads(their_raw)
    # what legitimately differs: the per-publish delivery tag, the sender's reply_to oid,
    # and the expiration (milliseconds left, counted at each send)
    for field in ("delivery_tag", "reply_to", "expiration"):
        if field in their_env["properties"]:
            our_raw = our_raw.replace(json.dumps(our_env["properties"][field]),
                                      json.dumps(their_env["properties"][field]))
    if "expiration" in their_env["properties"]:
        assert abs(int(our_env["properties"]["expiration"]) - int(their_env["properties"]["expiration"])) < 60_000
    assert our_raw == their_raw
    client2.flushdb()
    client2.close()


def test_args_parse_as_json_literals(run, url2):
    r = run("send", "t", "4", '"4"', "[1,2]", "foo", "-k", "a=1", "-k", "b=x", "--dry-run", "-b", url2)
    assert r.exit_code == 0, r
    body = r.json()["body"]
    assert body[0] == [4, "4", [1, 2], "foo"]
    assert body[1] == {"a": 1, "b": "x"}


def test_dry_run_publishes_nothing(run, url2, client2):
    r = run("send", "t", "--dry-run", "--compression", "gzip", "--serializer", "pickle", "-b", url2)
    assert r.exit_code == 0, r
    msg = r.json()
    assert msg["headers"]["compression"] == "application/x-gzip"
    assert msg["content_type"] == "application/x-python-serialize"
    assert list(client2.scan_iter()) == []


def test_json_output_fields(run, url2):
    r = run("send", "t", "--countdown", "60", "--expires", "120", "-o", "json", "-b", url2)
    assert r.exit_code == 0, r
    out = r.json()
    assert out["task"] == "t" and out["queue"] == "celery"
    eta = dt.datetime.fromisoformat(out["eta"])
    expires = dt.datetime.fromisoformat(out["expires"])
    assert 60 - within(5) < (eta - dt.datetime.now(UTC)).total_seconds() <= 60
    assert 120 - within(5) < (expires - dt.datetime.now(UTC)).total_seconds() <= 120


@pytest.mark.parametrize("given, seconds", [("90", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800)])
def test_expires_takes_seconds_and_durations(run, url2, given, seconds):
    """Celery's expires=N is N seconds from sending; a duration is the same N."""
    r = run("send", "t", "--expires", given, "-o", "json", "-b", url2)
    assert r.exit_code == 0, r
    expires = dt.datetime.fromisoformat(r.json()["expires"])
    assert seconds - within(5) < (expires - dt.datetime.now(UTC)).total_seconds() <= seconds


def test_naive_eta_is_utc_and_said(run, url2):
    r = run("send", "t", "--eta", "2031-01-01T12:00:00", "-o", "json", "-b", url2)
    assert r.exit_code == 0, r
    assert r.json()["eta"] == "2031-01-01T12:00:00+00:00"
    assert "taken as UTC" in r.stderr


def test_far_eta_warns_about_visibility_timeout(run, url2):
    r = run("send", "t", "--countdown", "7200", "-b", url2)
    assert r.exit_code == 0, r
    assert "visibility timeout" in r.stderr
    r = run("send", "t", "--countdown", "7200", "--visibility-timeout", "86400", "-b", url2)
    assert "visibility timeout" not in r.stderr


@pytest.mark.parametrize("argv, needle", [
    (["--priority", "10"], "0-9"),
    (["--eta", "tomorrow"], "ISO 8601"),
    (["--countdown", "5", "--eta", "2031-01-01T00:00:00Z"], "not both"),
    (["--kwargs", "[1]"], "JSON object"),
    (["--exchange", "ex"], "routing key"),
    (["--countdown", "99999999999999999"], "out of range"),  # was an internal error (exit 70)
    (["--expires", "1e300"], "after the year 9999"),
    (["--expires", "inf"], "finite"),
    (["--expires", "nan"], "finite"),
    (["--expires", "-5"], "negative"),
    (["--expires", "soon"], "a duration"),
])
def test_usage_errors(run, url2, client2, argv, needle):
    r = run("send", "t", *argv, "-b", url2)
    assert r.exit_code == 2, r
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert list(client2.scan_iter()) == []


# -- routing ------------------------------------------------------------------------------------
def test_named_exchanges_route_as_kombu(run, url2, client2):
    from kombu import Exchange, Queue

    app = make_app(url2)
    with app.connection_for_write() as conn:
        Queue("dq", Exchange("dex", "direct"), "k1")(conn.default_channel).declare()
        Queue("tq", Exchange("tex", "topic"), "a.*")(conn.default_channel).declare()
        Queue("tq2", Exchange("tex", "topic"), "#.z")(conn.default_channel).declare()
    app.close()
    assert run("send", "t", "--exchange", "dex", "--routing-key", "k1", "-b", url2).exit_code == 0
    assert run("send", "t", "--exchange", "tex", "--routing-key", "a.z", "-b", url2).exit_code == 0
    assert client2.llen("dq") == 1 and client2.llen("tq") == 1 and client2.llen("tq2") == 1
    env = json.loads(client2.lindex("tq", 0))
    assert env["properties"]["delivery_info"] == {"exchange": "tex", "routing_key": "a.z"}

    r = run("send", "t", "--exchange", "dex", "--routing-key", "nope", "-b", url2)
    assert r.exit_code == 1 and "unroutable" in r.stderr, r
    assert "nothing was published" in r.stderr and "before it" not in r.stderr, r  # one task: no "0 before it"
    r = run("send", "t", "--exchange", "tex", "--routing-key", "b.c", "-b", url2)
    assert r.exit_code == 1 and "unroutable" in r.stderr, r
    r = run("send", "t", "--exchange", "bcast", "--exchange-type", "fanout", "-b", url2)
    assert r.exit_code == 1 and "fanout" in r.stderr, r


def test_fanout_publishes_on_kombus_channel(run, url2, redis_server):
    sub = redis.Redis(port=redis_server.port, db=2).pubsub()
    sub.psubscribe("/2.bcast")
    wait_for(lambda: sub.get_message(timeout=0.1))
    r = run("send", "t", "--exchange", "bcast", "--exchange-type", "fanout", "-b", url2)
    assert r.exit_code == 0, r
    msg = wait_for(lambda: sub.get_message(timeout=0.1))
    assert json.loads(msg["data"])["headers"]["task"] == "t"
    sub.close()


# -- publish retry and unreachable brokers ----------------------------------------------------
def test_unreachable_broker_exit_69(run):
    port = free_port()
    started = time.monotonic()
    r = run("send", "t", "-b", f"redis://127.0.0.1:{port}/0")
    assert r.exit_code == 69, r
    assert "gave up after 3 retries" in r.stderr
    assert r.stderr.count("retry ") == 3
    assert time.monotonic() - started < within(10)
    r = run("send", "t", "--no-retry", "-b", f"redis://127.0.0.1:{port}/0")
    assert r.exit_code == 69 and "retry" not in r.stderr, r


def test_retry_until_broker_comes_up(run, tmp_path):
    port = free_port()
    servers = []
    timer = threading.Timer(1.0, lambda: servers.append(start_redis(tmp_path / "late", port=port)))
    timer.start()
    try:
        r = run("send", "t", "7", "-b", f"redis://127.0.0.1:{port}/0", "--retry-max", "40",
                "--retry-interval-step", "0.25", "--retry-interval-max", "0.25")
        timer.join()
        assert r.exit_code == 0, r
        assert "retry 1/40" in r.stderr
        client = redis.Redis(port=port)
        (raw,) = client.lrange("celery", 0, -1)
        assert json.loads(raw)["headers"]["id"] == r.stdout.strip()
        client.close()
    finally:
        timer.cancel()
        for s in servers:
            s.stop()


# -- bulk --from ---------------------------------------------------------------------------------
def test_from_bad_line_says_what_was_sent(run, url2, client2):
    lines = [json.dumps({"task": "t", "args": [i]}) for i in range(3)]
    lines.insert(2, "{not json")
    r = run("send", "--from", "-", "-b", url2, input="\n".join(lines) + "\n")
    assert r.exit_code == 65, r
    assert "line 3" in r.stderr and "2 task(s) were sent" in r.stderr and "nothing from line 3 on" in r.stderr
    assert client2.llen("celery") == 2
    assert len(r.stdout.split()) == 2


@pytest.mark.parametrize("line, needle", [
    ('{"task": [1]}', "'task' must be a non-empty string"),
    ('{"task": "t", "args": {}}', "'args' must be a JSON array"),
    ('{"task": "t", "kwargs": []}', "'kwargs' must be a JSON object"),
    ('{"task": "t", "options": []}', "'options' must be a JSON object"),
    ('{"task": "t", "options": {"id": 5}}', "task_id must be a string"),
    ('{"task": "t", "options": {"bogus": 1}}', "unknown option 'bogus'"),
    ('{"task": "t", "options": {"countdown": 1e300}}', "countdown of 1e+300 s ends after the year 9999"),
    ('{"task": "t", "extra": 1}', "unknown field"),
    ('[1]', "a line must be a JSON object"),
    ('{"task": "t", "args": [18446744073709551616], "options": {"serializer": "msgpack"}}', "cannot encode"),
])
def test_from_rejects_bad_lines(run, url2, client2, line, needle):
    good = json.dumps({"task": "t"})
    r = run("send", "--from", "-", "-b", url2, input=f"{good}\n{line}\n{good}\n")
    assert r.exit_code == 65, r
    assert f"line 2: {needle}" in r.stderr and "1 task(s) were sent (up to line 1)" in r.stderr, r
    assert client2.llen("celery") == 1


def test_from_unroutable_line_stops_there(run, url2, client2):
    lines = [json.dumps({"task": "t"}), json.dumps({"task": "t", "options": {"exchange": "nx", "routing_key": "k"}}),
             json.dumps({"task": "t"})]
    r = run("send", "--from", "-", "-b", url2, input="\n".join(lines))
    assert r.exit_code == 1, r
    assert "line 2" in r.stderr and "1 task(s) were sent" in r.stderr
    assert client2.llen("celery") == 1


# -- a real worker runs what we send ----------------------------------------------------------
COMPRESSIONS = [None, "zlib", "gzip", "bzip2", "lzma", "brotli", "zstd"]


def test_worker_runs_every_serializer_compression_protocol(run, wurl):
    lines, expected = [], {}
    for i, (ser, comp, proto) in enumerate(
        (s, c, p) for s in ("json", "pickle", "msgpack", "yaml") for c in COMPRESSIONS for p in (1, 2)
    ):
        task_id = f"combo-{ser}-{comp}-{proto}"
        options = {"serializer": ser, "protocol": proto, "task_id": task_id}
        if comp:
            options["compression"] = comp
        lines.append(json.dumps({"task": "worker_tasks.echo", "args": [i, "é"], "kwargs": {"k": [i]},
                                 "options": options}))
        expected[task_id] = {"args": [i, "é"], "kwargs": {"k": [i]}}
    r = run("send", "--from", "-", "-b", wurl, input="\n".join(lines) + "\n")
    assert r.exit_code == 0, r
    assert r.stdout.split() == list(expected)
    r = run("result", *expected, "--wait", "--timeout", "60", "-o", "json", "-b", wurl)
    assert r.exit_code == 0, r
    got = {x["id"]: x["result"] for x in r.json()}
    assert got == expected


def test_countdown_and_eta_are_honoured(run, wurl):
    sent_at = time.time()
    r1 = run("send", "worker_tasks.stamp", "cd", "--countdown", "1.5", "-b", wurl)
    eta = dt.datetime.now(UTC) + dt.timedelta(seconds=1.5)
    r2 = run("send", "worker_tasks.stamp", "eta", "--eta", eta.isoformat(), "-b", wurl)
    ids = [r1.stdout.strip(), r2.stdout.strip()]
    r = run("result", *ids, "--wait", "--timeout", "30", "-o", "json", "-b", wurl)
    assert r.exit_code == 0, r
    cd, at = (x["result"] for x in r.json())
    assert cd["ran"] >= sent_at + 1.5
    assert at["ran"] >= eta.timestamp()
    assert dt.datetime.fromisoformat(at["eta"]) == eta


def test_expired_task_ends_revoked(run, wurl):
    r = run("send", "worker_tasks.add", "1", "1", "--expires", "2001-01-01T00:00:00+00:00", "-b", wurl)
    assert r.exit_code == 0, r
    r = run("result", r.stdout.strip(), "--wait", "--timeout", "30", "-o", "json", "-b", wurl)
    assert r.exit_code == 1, r
    out, = r.json()
    assert out["status"] == "REVOKED"
    assert out["exception"] == {"type": "TaskRevokedError", "module": "celery.exceptions", "message": "expired"}


def test_priority_order_observed(run, wurl, wclient):
    from celery import Celery

    app = Celery(broker=wurl, backend=wurl, set_as_current=False)
    blocker = app.send_task("worker_tasks.slow", (1.0,))
    wait_for(lambda: app.backend.get_task_meta(blocker.id)["status"] == "STARTED")
    lines = [json.dumps({"task": "worker_tasks.mark", "args": [p], "options": {"priority": p}})
             for p in (9, 6, 3, 0)]
    r = run("send", "--from", "-", "-b", wurl, input="\n".join(lines))
    assert r.exit_code == 0, r
    r = run("result", *r.stdout.split(), "--wait", "--timeout", "30", "-b", wurl)
    assert r.exit_code == 0, r
    assert records(wclient) == [0, 3, 6, 9]  # Redis serves the lowest number first
    app.close()


def test_link_and_link_error_run(run, wurl, wclient):
    r = run("send", "worker_tasks.add", "2", "3", "--link", "worker_tasks.mark", "-b", wurl)
    ok_id = r.stdout.strip()
    r = run("send", "worker_tasks.fail", "--link-error", "worker_tasks.on_error", "-b", wurl)
    bad_id = r.stdout.strip()
    assert run("result", ok_id, "--wait", "--timeout", "30", "-b", wurl).exit_code == 0
    assert run("result", bad_id, "--wait", "--timeout", "30", "-b", wurl).exit_code == 1
    got = wait_for(lambda: len(records(wclient)) >= 2 and records(wclient))
    assert 5 in got
    assert {"errback": bad_id, "exc": "CustomError"} in got


def test_send_wait_returns_the_result(run, wurl):
    r = run("send", "worker_tasks.mul", "6", "7", "--wait", "--timeout", "30", "-o", "json", "-b", wurl)
    assert r.exit_code == 0, r
    assert r.json()["result"] == 42 and r.json()["status"] == "SUCCESS"


# -- the bulk shortcuts give exactly what the slow, plain path gives --------------------------
SAMPLES = [
    ((), {}),
    ((1, 2), {}),
    ((0, -5, 10**20, True, None, "x"), {"a": 1, "b": "two"}),
    (("it's", 'say "hi"', "back\\slash", "new\nline", "é€", "\x00"), {"k": 1.5}),
    ((1.0, 1e20, float("inf")), {}),
    (([1, [2, [3, [4, [5]]]]], {"d": {"e": {"f": {"g": 1}}}}), {"nested": [{"x": [1, 2]}]}),
    (("x" * 2000,), {"long": "y" * 2000}),
    (tuple(range(100)), {str(i): i for i in range(50)}),
    (({"a": 1},), {"1": None, "é": "ü"}),
    ((True, False, 10**15, -10**15, 10**15 - 1, "a" * 64, "b" * 65), {"it's": 1, "t": True, "": ""}),
    ([7, "x", None], {"q": 'say "hi"', "n": -(10**15) + 1}),
    (tuple(range(32)), {str(i): i for i in range(32)}),
    (tuple(range(33)), {str(i): i for i in range(33)}),
    (("it's",), {"v": "back\\slash"}),
]


@pytest.mark.parametrize("args, kwargs", SAMPLES)
@pytest.mark.parametrize("options", [
    {}, {"priority": 7, "expires": EXPIRES, "headers": {"h": [1, 2]}},
    {"compression": "zlib", "link": ("a.b",)}, {"serializer": "pickle"}, {"protocol": 1},
])
@pytest.mark.parametrize("ahead", [False, True], ids=["", "texts-ahead"])
def test_template_fill_equals_celerys_builder(args, kwargs, options, ahead):
    """Also with the argument texts worked out ahead (retry's reading process: arg_texts)."""
    from celerytool.brokers.redis.publish import envelope
    from celerytool.sending import MessageBuilder, TaskSpec
    from celerytool.sending.build import arg_texts

    builder = MessageBuilder("redis://localhost")
    spec = TaskSpec(name="tasks.x", args=args, kwargs=kwargs, **options)
    ours = builder.template(spec).fill(TID, args, kwargs, texts=arg_texts(args, kwargs) if ahead else None)
    theirs = builder.celery_message(spec, TID, args, kwargs)
    headers = {**theirs.headers, **spec.headers}
    if spec.compression:
        headers["compression"] = "application/x-gzip"
    assert dict(ours.headers) == headers
    assert list(ours.headers) == list(headers)  # the same order
    if getattr(ours.headers, "json_text", None) is not None:
        assert ours.headers.json_text == json.dumps(headers)
    from kombu.compression import compress
    from kombu.serialization import dumps

    _, _, body = dumps(theirs.body, serializer=spec.serializer)
    body = body.encode() if isinstance(body, str) else body
    if spec.compression:
        body, _ = compress(body, "zlib")
    assert ours.body == body
    # the envelope's cached text pieces give what one json.dumps of the envelope gives
    plain = json.loads(envelope(ours, "tag"))
    from dataclasses import replace

    fast = envelope(replace(ours, headers=dict(ours.headers)), "tag")
    cached = envelope(ours, "tag", {})
    assert cached == fast and json.loads(cached) == plain



def test_plain_arguments_are_worked_out_ahead():
    from celerytool.sending.build import arg_texts

    assert arg_texts((1, "x"), {"n": 2}) == ("(1, 'x')", "{'n': 2}", '[[1, "x"], {"n": 2}]')
    assert arg_texts((object(),), {}) is None and arg_texts((), {"k": "it's"}) is None


@pytest.mark.parametrize("extra", [{"retry_of": TID}, {"retry_of": "it's \"é\"\n", "x": "y"}, {"n": [1, {"a": None}]}])
def test_template_fill_with_parent_and_extra_headers_text(extra):
    """retry's per-message headers (parent id, retry_of) in the kept JSON text equal json.dumps's."""
    from celerytool.sending import MessageBuilder, TaskSpec

    spec = TaskSpec(name="tasks.x")
    ours = MessageBuilder("redis://localhost").template(spec).fill(TID, (1, "a"), {"k": 2}, parent_id="p-1",
                                                                  extra=extra)
    assert ours.headers["parent_id"] == "p-1" and all(ours.headers[k] == v for k, v in extra.items())
    assert ours.headers.json_text == json.dumps(dict(ours.headers))


def test_send_from_with_a_progress_bar_keeps_the_ids_on_stdout(redis_url, redis_client, tmp_path):
    """On a terminal (stderr) send --from draws a progress bar; the ids still go to stdout (a
    file here), one per task, and the bar and notes to the terminal only."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    source = tmp_path / "tasks.ndjson"
    source.write_text("".join(json.dumps({"task": "tasks.add", "args": [i, i]}) + "\n" for i in range(12_000)))
    out = tmp_path / "ids.txt"
    primary, secondary = os.openpty()
    root = Path(__file__).resolve().parent.parent
    with open(out, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "celerytool", "send", "--from", str(source), "-b", redis_url,
                                 "-q", "pbar"], stdin=subprocess.DEVNULL, stdout=stdout, stderr=secondary,
                                env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "100"})
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=60) == 0, seen[-2000:]
    os.close(primary)
    ids = out.read_text().split()
    assert len(ids) == 12_000 == len(set(ids)) == redis_client.llen("pbar")
    assert b"sending" in seen and b"sent 12000 task(s)" in seen  # the bar was drawn, the note written
    assert not any(i.encode() in seen for i in ids[:50])  # no id on the terminal
