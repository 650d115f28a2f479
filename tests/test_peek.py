"""peek against a real redis-server with messages produced by real Celery."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest

SERIALIZERS = ["json", "pickle", "msgpack", "yaml"]
COMPRESSIONS = [None, "zlib", "gzip", "bzip2", "lzma", "brotli", "zstd"]
MIME = {"zlib": "application/x-gzip", "gzip": "application/x-gzip", "bzip2": "application/x-bz2",
        "lzma": "application/x-lzma", "brotli": "application/x-brotli", "zstd": "application/zstd"}
CONTENT_TYPES = {"json": "application/json", "pickle": "application/x-python-serialize",
                 "msgpack": "application/x-msgpack", "yaml": "application/x-yaml"}


def parse_iso(text):
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize("protocol", [1, 2])
def test_peek_decodes_every_serializer_and_compression(run, redis_url, celery_app, protocol):
    celery_app.conf.task_protocol = protocol
    sent = []
    for serializer, compression in itertools.product(SERIALIZERS, COMPRESSIONS):
        tid = str(uuid.uuid4())
        args = [1, "héllo €", {"nested": [1, 2.5, None]}, serializer]
        kwargs = {"k": "v", "n": 3}
        celery_app.send_task("tasks.add", args=args, kwargs=kwargs, task_id=tid,
                             serializer=serializer, compression=compression)
        sent.append((tid, serializer, compression, args, kwargs))
    r = run("peek", "celery", "-n", "100", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    got = r.json()
    assert [m["id"] for m in got] == [s[0] for s in sent]  # FIFO: first sent is next
    for m, (_tid, serializer, compression, args, kwargs) in zip(got, sent, strict=True):
        assert m["error"] is None, (serializer, compression, m["error"])
        assert m["task"] == "tasks.add"
        assert m["protocol"] == protocol
        assert m["args"] == args
        assert m["kwargs"] == kwargs
        assert m["content_type"] == CONTENT_TYPES[serializer]
        assert m["compression"] == (MIME[compression] if compression else None)
        assert m["queue"] == "celery"


def test_peek_positions_follow_kombu_consumption_order(run, redis_url, celery_app):
    """The order peek shows is the order kombu's own consumer gets them."""
    for i, prio in enumerate([0, 5, 3, 9, 0, 7, 1, 6, 9, 4]):
        celery_app.send_task("tasks.p", args=[i], priority=prio, task_id=f"t{i}")
    r = run("peek", "celery", "--all", "-b", redis_url, "-o", "ndjson")
    assert r.exit_code == 0, r
    shown = [m["id"] for m in r.ndjson()]
    assert [m["position"] for m in r.ndjson()] == list(range(10))
    consumed = []
    with celery_app.connection_for_read() as conn:
        q = conn.SimpleQueue("celery", no_ack=True)
        for _ in range(10):
            consumed.append(q.get(timeout=2).headers["id"])
        q.close()
    assert shown == consumed


def test_peek_changes_nothing(run, redis_url, celery_app, redis_client):
    for i in range(30):
        celery_app.send_task("tasks.x", args=[i], priority=i % 10)
    keys = sorted(redis_client.keys("*"))
    before = {k: redis_client.lrange(k, 0, -1) if redis_client.type(k) == b"list" else redis_client.smembers(k)
              for k in keys}
    assert run("peek", "celery", "-n", "5", "-b", redis_url).exit_code == 0
    assert run("peek", "celery", "--all", "-b", redis_url, "-o", "json").exit_code == 0
    after = {k: redis_client.lrange(k, 0, -1) if redis_client.type(k) == b"list" else redis_client.smembers(k)
             for k in keys}
    assert after == before
    assert sorted(redis_client.keys("*")) == keys


def test_peek_limit_and_all_stream_beyond_one_chunk(run, redis_url, celery_app, redis_client):
    with celery_app.producer_or_acquire() as producer:
        for i in range(2500):
            celery_app.send_task("tasks.n", args=[i], producer=producer)
    r = run("peek", "celery", "-n", "3", "-b", redis_url, "-o", "json")
    assert [m["args"] for m in r.json()] == [[0], [1], [2]]
    r = run("peek", "celery", "--all", "-b", redis_url, "-o", "ndjson")
    assert [m["args"][0] for m in r.ndjson()] == list(range(2500))


def test_eta_expires_retries_and_embed(run, redis_url, celery_app):
    from celery import signature

    before = dt.datetime.now(dt.timezone.utc)
    celery_app.send_task("tasks.later", args=[1], countdown=60, expires=120, retries=2,
                         link=signature("tasks.cb", args=(10,)), link_error=signature("tasks.err"))
    m = run("peek", "celery", "-b", redis_url, "-o", "json").json()[0]
    eta, expires = parse_iso(m["eta"]), parse_iso(m["expires"])
    assert 59 <= (eta - before).total_seconds() <= 70
    assert 119 <= (expires - before).total_seconds() <= 130
    assert m["retries"] == 2
    assert m["embed"]["callbacks"][0]["task"] == "tasks.cb"
    assert m["embed"]["callbacks"][0]["args"] == [10]
    assert m["embed"]["errbacks"][0]["task"] == "tasks.err"
    assert m["properties"]["expiration"] == "120000"


def test_pickled_values_come_out_tagged(run, redis_url, celery_app):
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    u = uuid.UUID(int=1)
    import decimal

    celery_app.send_task("tasks.p", args=[when, decimal.Decimal("1.5"), u, {1, 2}, b"\xff\x00"],
                         serializer="pickle")
    m = run("peek", "celery", "-b", redis_url, "-o", "json").json()[0]
    assert m["args"] == [
        {"__type__": "datetime", "__value__": when.isoformat()},
        {"__type__": "decimal", "__value__": "1.5"},
        {"__type__": "uuid", "__value__": str(u)},
        {"__type__": "set", "__value__": [1, 2]},
        {"__type__": "base64", "__value__": "/wA="},
    ]


def test_big_and_non_ascii_bodies(run, redis_url, celery_app):
    big = "é" * 1_500_000
    celery_app.send_task("tasks.big", args=[big, "日本語", "🙂"], compression="zlib")
    m = run("peek", "celery", "-b", redis_url, "-o", "json").json()[0]
    assert m["args"] == [big, "日本語", "🙂"]
    celery_app.send_task("tasks.small", args=["日本語"])
    table = run("peek", "celery", "-b", redis_url)
    assert "日本語" in table.stdout


def test_table_output(run, redis_url, celery_app):
    celery_app.send_task("tasks.add", args=[2, 3], kwargs={"z": 1}, task_id="abc")
    r = run("peek", "celery", "-b", redis_url)
    assert r.exit_code == 0
    assert "tasks.add" in r.stdout and "abc" in r.stdout and "[2, 3]" in r.stdout
    assert r.stderr == ""


def test_options_work_before_the_command(run, redis_url, celery_app):
    celery_app.send_task("tasks.add", args=[1], task_id="before")
    r = run("-b", redis_url, "-o", "json", "peek", "celery")
    assert r.json()[0]["id"] == "before"


def test_broker_url_from_environment(run, redis_url, celery_app):
    celery_app.send_task("tasks.add", args=[1], task_id="env")
    r = run("peek", "celery", "-o", "json", env={"CELERY_BROKER_URL": redis_url})
    assert r.json()[0]["id"] == "env"


def test_empty_known_queue_is_not_an_error(run, redis_url, celery_app):
    from kombu import Exchange, Queue

    with celery_app.connection_for_write() as conn:
        Queue("idle", Exchange("idle", "direct"), "idle")(conn.default_channel).declare()
    r = run("peek", "idle", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0 and r.json() == []


def test_custom_keyprefix_sep_and_priority_steps(run, redis_url):
    from conftest import make_app

    app = make_app(redis_url)
    app.conf.broker_transport_options = {"global_keyprefix": "myapp:", "sep": ":",
                                         "priority_steps": list(range(10))}
    for prio in (7, 0, 3):
        app.send_task("tasks.p", args=[prio], priority=prio)
    opts = ["--keyprefix", "myapp:", "--sep", ":", "--priority-steps", "0,1,2,3,4,5,6,7,8,9", "-b", redis_url]
    r = run("peek", "celery", "-o", "json", *opts)
    assert [m["args"] for m in r.json()] == [[0], [3], [7]]
    q = run("queues", "-o", "json", *opts).json()
    assert q == [{"name": "celery", "messages": 3, "exists": True, "delayed": 0,
                  "priorities": {str(i): (1 if i in (0, 3, 7) else 0) for i in range(10)}}]
    app.close()


def test_peek_raw_gives_the_stored_bytes(run, redis_url, celery_app, redis_client):
    celery_app.send_task("tasks.add", args=[1], task_id="raw-1")
    m = run("peek", "celery", "--raw", "-b", redis_url, "-o", "json").json()[0]
    assert m["raw"] == {"__type__": "bytes", "__value__": redis_client.lindex("celery", -1).decode()}
