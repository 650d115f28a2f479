"""Stored messages with values of the wrong type, found by a hostile-input campaign: each
case once ended in exit 70 (an internal error).  Good messages are made by Celery; the
hostile ones are Celery's own envelopes with one field changed, as a broken or hostile
producer would write them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import make_app


def _stored(redis_client, queue: str = "celery") -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(queue, 0, -1)]


def _replace(redis_client, envelopes: list[dict], queue: str = "celery") -> list[bytes]:
    redis_client.delete(queue)
    raws = [json.dumps(e).encode() for e in envelopes]
    redis_client.rpush(queue, *raws)
    return raws


# --- summary: a census over values of any type -------------------------------------------

@pytest.fixture
def pickled_mix(redis_url, redis_client):
    """Pickled bodies whose first argument is a set, a bytearray, NaN (twice), a complex, a
    datetime, bytes; then two messages whose eta header is not text."""
    app = make_app(redis_url)
    firsts = [{1, 2}, bytearray(b"y"), float("nan"), float("nan"), complex(1, 2),
              dt.datetime(2031, 1, 1), b"raw", "text"]
    for i, first in enumerate(firsts):
        app.send_task("tasks.mixed", args=[first], kwargs={"k": first}, serializer="pickle",
                      task_id=f"mixed-{i}")
    app.send_task("tasks.eta", args=[1], task_id="eta-ok", eta=dt.datetime(2031, 1, 1, 5, tzinfo=dt.timezone.utc))
    app.close()
    envelopes = _stored(redis_client)
    for bad in ([1], 5):
        e = json.loads(json.dumps(envelopes[-1]))
        e["headers"]["eta"] = bad
        envelopes.append(e)
    _replace(redis_client, envelopes)
    return len(envelopes)


@pytest.mark.parametrize("by", ["args[0]", "kwargs.k", "eta", "retries", "args"])
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_summary_groups_values_of_any_type(run, redis_url, redis_client, pickled_mix, by, fmt):
    before = redis_client.lrange("celery", 0, -1)
    r = run("summary", "celery", "--by", by, "-b", redis_url, "-o", fmt)
    assert r.exit_code == 0, r
    assert redis_client.lrange("celery", 0, -1) == before
    if fmt == "json":
        rows = r.json()
        assert sum(row["count"] for row in rows) == pickled_mix
        etas = {row["oldest_eta"] for row in rows} | {row["newest_eta"] for row in rows}
        assert etas <= {None, "2031-01-01T05:00:00+00:00"}  # an eta that is not text is no time
        if by == "args[0]":  # both NaNs in one group, shown as JSON can carry them
            nan = [row for row in rows if row["value"] == {"__type__": "float", "__value__": "nan"}]
            assert [row["count"] for row in nan] == [2]


# --- --task / --id over names that are not text ---------------------------------------------

def test_task_and_id_selection_skip_names_that_are_not_text(run, redis_url, redis_client, celery_app):
    for i in range(3):
        celery_app.send_task("tasks.good", args=[i], task_id=f"good-{i}")
    envelopes = _stored(redis_client)
    for bad_task, bad_id in (({"a": 1}, ["good-0"]), (5, {"x": 1}), (["tasks.good"], 7)):
        e = json.loads(json.dumps(envelopes[0]))
        e["headers"]["task"], e["headers"]["id"] = bad_task, bad_id
        envelopes.append(e)
    _replace(redis_client, envelopes)
    r = run("peek", "celery", "--all", "--task", "tasks.*", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    assert sorted(m["id"] for m in r.json()) == ["good-0", "good-1", "good-2"]
    r = run("peek", "celery", "--all", "--id", "good-1", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    assert [m["id"] for m in r.json()] == ["good-1"]


# --- envelope fields of the wrong type ------------------------------------------------------

@pytest.mark.parametrize("field,value,error", [
    ("content-type", 5, "content type is a JSON int, not text"),
    ("content-type", ["application/json"], "content type is a JSON list, not text"),
    ("body", "[[1], {}, {}] \ud800", "body is not valid text"),  # a lone surrogate, kept as text
])
def test_envelope_fields_of_the_wrong_type_are_a_message_error(run, redis_url, redis_client, celery_app,
                                                               field, value, error):
    celery_app.send_task("tasks.good", args=[1], task_id="good")
    celery_app.send_task("tasks.bad", args=[2], task_id="bad")
    good, bad = sorted(_stored(redis_client), key=lambda e: e["headers"]["id"] != "good")
    bad[field] = value
    if field == "body":
        del bad["properties"]["body_encoding"]
    _replace(redis_client, [good, bad])
    for fmt in ("table", "json", "ndjson"):
        r = run("peek", "celery", "-b", redis_url, "-o", fmt)
        assert r.exit_code == 0, r
    shown = r.ndjson()
    assert [(m["id"], m["args"], m["error"]) for m in shown if m["error"] is None] == [("good", [1], None)]
    assert sorted(error in (m["error"] or "") for m in shown) == [False, True]


def test_a_content_encoding_that_is_not_text_gives_the_bytes(run, redis_url, redis_client, celery_app):
    celery_app.send_task("tasks.raw", args=[1], task_id="raw")
    (e,) = _stored(redis_client)
    e["content-type"], e["content-encoding"] = "application/data", 7
    _replace(redis_client, [e])
    r = run("peek", "celery", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    (m,) = r.json()
    assert m["id"] == "raw" and m["error"] == "protocol 2 body is not [args, kwargs, embed]"
    assert m["body"]["__type__"] == "bytes"  # kombu's rule: no text encoding, the bytes


# --- task fields of types JSON cannot carry (RabbitMQ headers, pickled protocol-1 bodies) ---

def test_amqp_task_headers_of_other_types_come_out_as_tagged_json(run, amqp_celery_app, pika_channel):
    """RabbitMQ header values can be timestamps, decimals or bytes: as a task's retries, name
    or id they once made `peek -o json` exit 70."""
    from decimal import Decimal

    from amqp_helpers import depth, drain, settled

    amqp_celery_app.send_task("tasks.good", args=[1], task_id="good")
    ((body, props),) = drain(pika_channel, "celery")
    hostile = dict(props.headers, retries=dt.datetime(2031, 1, 1), task=Decimal("1.5"), id=b"\xff\xfe")
    for headers in (props.headers, hostile):
        props.headers = headers
        pika_channel.basic_publish("", "celery", body, props)
    settled(pika_channel, "celery")
    for fmt in ("table", "json", "ndjson"):
        r = run("peek", "celery", "-b", amqp_celery_app.conf.broker_url, "-o", fmt)
        assert r.exit_code == 0, r
    assert depth(pika_channel, "celery") == 2
    good, bad = r.ndjson()
    assert (good["id"], good["task"], good["retries"], good["args"]) == ("good", "tasks.good", 0, [1])
    assert bad["retries"] == {"__type__": "datetime", "__value__": "2031-01-01T00:00:00+00:00"}
    assert bad["task"] == {"__type__": "decimal", "__value__": "1.5"}
    assert bad["id"]["__type__"] == "base64" and bad["args"] == [1]


def test_pickled_protocol_1_task_fields_of_any_type(run, redis_url, redis_client):
    """Protocol 1 keeps id, task and retries in the (here pickled) body: any Python value."""
    import base64
    import pickle

    app = make_app(redis_url, task_protocol=1)
    app.send_task("tasks.v1", args=[1], task_id="v1", serializer="pickle")
    app.close()
    (envelope,) = _stored(redis_client)
    body = pickle.loads(base64.b64decode(envelope["body"]))  # noqa: S301 - the test's own message
    assert body["id"] == "v1"
    body.update(id={1, 2}, retries=float("nan"), task=b"tasks.v1")
    envelope["body"] = base64.b64encode(pickle.dumps(body)).decode()
    _replace(redis_client, [envelope])
    for fmt in ("table", "json"):
        r = run("peek", "celery", "-b", redis_url, "-o", fmt)
        assert r.exit_code == 0, r
    (m,) = r.json()
    assert (m["protocol"], m["args"], m["error"]) == (1, [1], None)
    assert m["id"] == {"__type__": "set", "__value__": [1, 2]}
    assert m["retries"] == {"__type__": "float", "__value__": "nan"}
    assert m["task"] == {"__type__": "bytes", "__value__": "tasks.v1"}


# --- requeue: kombu's priority rule over a priority that is no integer ----------------------

TAKE_AND_DIE = """
import os, sys
from kombu import Connection
with Connection(sys.argv[1]) as conn:
    q = conn.SimpleQueue("celery", no_ack=False)
    q.get(timeout=10)  # now in kombu's unacked hash, as a worker holding it
    os._exit(0)  # killed: never acked, never restored
"""


@pytest.mark.parametrize("priority", ["Infinity", "-Infinity", "NaN", "1e999", '"5"'])
def test_requeue_a_message_whose_priority_is_no_integer(run, redis_url, redis_client, celery_app, priority):
    import subprocess
    import sys

    celery_app.send_task("tasks.held", args=[1], task_id="held")
    subprocess.run([sys.executable, "-c", TAKE_AND_DIE, redis_url], check=True, timeout=60)
    ((tag, entry),) = redis_client.hgetall("unacked").items()
    assert b'"priority": 0' in entry
    redis_client.hset("unacked", tag, entry.replace(b'"priority": 0', b'"priority": ' + priority.encode()))
    r = run("requeue", "--yes", "-b", redis_url)
    assert r.exit_code == 0, r
    assert redis_client.hlen("unacked") == 0
    r = run("peek", "celery", "-b", redis_url, "-o", "json")
    assert [m["id"] for m in r.json()] == ["held"]  # requeued once, to kombu's default bucket or "5"'s


@pytest.mark.parametrize("score", ["inf", "-inf", "1e300", "-1e300"])
def test_unacked_with_a_delivery_time_no_date_holds(run, redis_url, redis_client, celery_app, score):
    """An unacked_index score out of every date's range (kombu writes time()): once exit 70."""
    import subprocess
    import sys

    celery_app.send_task("tasks.held", args=[1], task_id="held")
    subprocess.run([sys.executable, "-c", TAKE_AND_DIE, redis_url], check=True, timeout=60)
    (tag,) = redis_client.hkeys("unacked")
    redis_client.zadd("unacked_index", {tag: float(score)})
    r = run("unacked", "-b", redis_url, env={"COLUMNS": "120"})
    assert r.exit_code == 0, r
    assert "held" in r.stdout and max(map(len, r.stdout.splitlines())) <= 120  # no 300-digit age
    r = run("unacked", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    (m,) = r.json()
    assert (m["id"], m["delivered_at"], m["age"]) == ("held", None, None)
    r = run("requeue", "--older-than", "1s", "--dry-run", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r  # no age: not older than anything
    assert (r.json()["examined"], r.json()["matched"]) == (1, 0)
    assert redis_client.hkeys("unacked") == [tag]
