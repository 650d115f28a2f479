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
