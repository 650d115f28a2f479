"""JSON out: the fast message lines give exactly the values of the general path."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import uuid

import pytest

from celerytool import jsontext
from celerytool.codecs.message import decode_envelope

from conftest import make_app


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def same(a, b):
    """Equal values of equal types (NaN equal to NaN, -0.0 apart from 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


# --- units --------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    {"k": ["ü€😀", 1, 2.5, None, True, {"n": -3}], "ctl": "a\nb\t\"\\\x01\x7f\u2028"},
    [2**70, -(2**65)],
    [1e-7, 1e16, 0.00001, -0.0, 123.456],
])
def test_dumps_is_compact_json_of_the_same_values(value):
    text = jsontext.dumps(value)
    assert same(json.loads(text), value)
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_dumps_leaves_other_types_to_the_caller():
    with pytest.raises(TypeError):  # celerytool tags them first (to_jsonable)
        jsontext.dumps({"when": dt.datetime(2024, 1, 2)})


@pytest.mark.parametrize("text", ["[NaN]", "[1, Infinity]", "{\"a\": -Infinity}", "[1e400]", "[-1e999]"])
def test_scan_refuses_what_to_jsonable_would_tag(text):
    from celerytool.jsontext import to_jsonable

    assert not same(to_jsonable(json.loads(text)), json.loads(text))
    with pytest.raises(jsontext.NotPlain):
        jsontext.scan(text, 0)


def test_scan_gives_the_value_and_where_its_text_ends():
    text = '[[1, 2.5e3, "\\u00fc"], {"a": [123456789012345678901234567890]}, 1.5e300]'
    args, end = jsontext.scan(text, 1)
    assert args == [1, 2500.0, "ü"] and text[1:end] == '[1, 2.5e3, "\\u00fc"]'
    kwargs, end2 = jsontext.scan(text, end + 2)
    assert kwargs == {"a": [123456789012345678901234567890]}
    assert jsontext.scan(text, end2 + 2) == (1.5e300, len(text) - 1)


def test_shallow_bounds_to_jsonables_depth():
    from celerytool.jsontext import to_jsonable

    assert jsontext.shallow(json.dumps(nested(200)))
    assert to_jsonable(nested(200)) == nested(200)
    assert not jsontext.shallow(json.dumps(nested(202)))
    assert to_jsonable(nested(203)) != nested(203)
    assert jsontext.shallow('"' + "[" * 1000 + '"') is False  # a bound, not a parser


# --- real Celery messages: fast lines against the general path ----------------------

PLAIN = [  # (args, kwargs, options): JSON-plain, the fast path must take them
    ([1, "héllo €", {"nested": [1, 2.5, None]}], {"k": "v", "deep": {"a": [{"b": ["ü", {"c": 1}]}]}}, {}),
    ([2**70, -(2**65), 12345678901234567890123, 18446744073709551615], {"big": -(2**100)}, {}),
    ([1e-7, 1e16, 0.1, -0.0, 1.5e300, 5e-324, 2.0], {"f": -0.0}, {}),
    (["日本語 🙂", "\u2028", "tab\tnew\nline \"q\" \\"], {"ключ": "значение"}, {}),
    ([nested(190)], {}, {}),
    ([], {}, {"priority": 5}),
    ([1, "zlib"], {"x": "ü"}, {"compression": "zlib"}),
    ([1, "bzip2"], {}, {"compression": "bzip2"}),
    ([1, "brotli"], {}, {"compression": "brotli"}),
    (["eta"], {}, {"countdown": 3600, "expires": 7200}),
]
NOT_PLAIN = [  # the general path: tagged by kombu or by to_jsonable, or another shape
    ([float("nan"), float("inf"), float("-inf")], {}, {}),
    ([dt.datetime(2024, 5, 6, 7, 8, 9), decimal.Decimal("1.10"), uuid.UUID(int=7)], {}, {}),
    ([nested(205)], {}, {}),
    ([1, "pickle"], {"k": b"bytes"}, {"serializer": "pickle"}),
    ([1, "msgpack"], {}, {"serializer": "msgpack"}),
    ([1, "yaml"], {}, {"serializer": "yaml"}),
]


def _send(app, cases):
    for args, kwargs, options in cases:
        app.send_task("tasks.t", args=args, kwargs=kwargs, **{"serializer": "json", **options})


def _stored(redis_client):
    """Every stored item of the celery queue lists, next first."""
    items = []
    for key in [b"celery", *(b"celery\x06\x16%d" % p for p in (3, 6, 9))]:
        items += reversed(redis_client.lrange(key, 0, -1))
    return items


def _both_ways(raw, position=0):
    fast = decode_envelope(raw, queue="celery", position=position, priority=0)
    general = decode_envelope(raw, queue="celery", position=position, priority=0, fast=False)
    return fast, general


def _check_same(fast, general):
    expected = json.loads(json.dumps(general.to_json()))
    assert fast == general
    assert same(fast.to_json(), general.to_json())
    line = jsontext.record_text(fast, "\n")
    assert line.endswith("\n") and line.count("\n") == 1
    assert same(json.loads(line), expected)
    assert same(json.loads(jsontext.record_text(general)), expected)
    return expected


def test_fast_lines_equal_the_general_path_for_plain_json(redis_client, celery_app):
    _send(celery_app, PLAIN)
    celery_app.send_task("tasks.t", args=["linked"], link=celery_app.signature("tasks.cb", args=[2]),
                         link_error=celery_app.signature("tasks.eb"))
    stored = _stored(redis_client)
    assert len(stored) == len(PLAIN) + 1
    by_args = {}
    for position, raw in enumerate(stored):
        fast, general = _both_ways(raw, position)
        assert fast.json_texts is not None, raw[:200]  # the fast path took it
        assert general.json_texts is None
        got = _check_same(fast, general)
        by_args[json.dumps(got["args"])] = got
    for args, kwargs, options in PLAIN:  # the values Celery was asked to send
        got = by_args[json.dumps(args)]
        assert same(got["args"], args) and same(got["kwargs"], kwargs)
        assert got["compression"] == ({"zlib": "application/x-gzip", "bzip2": "application/x-bz2",
                                       "brotli": "application/x-brotli"}.get(options.get("compression")))
        assert got["protocol"] == 2 and got["error"] is None
        if "countdown" in options:
            assert dt.datetime.fromisoformat(got["eta"]) > dt.datetime.now(dt.timezone.utc)
    embed = by_args['["linked"]']["embed"]
    assert [c["task"] for c in embed["callbacks"]] == ["tasks.cb"] and embed["callbacks"][0]["args"] == [2]
    assert [c["task"] for c in embed["errbacks"]] == ["tasks.eb"]


def test_what_is_not_plain_json_goes_the_general_way(redis_client, redis_url, celery_app):
    _send(celery_app, NOT_PLAIN)
    protocol_1 = make_app(redis_url, task_protocol=1)
    _send(protocol_1, PLAIN[:2])
    protocol_1.close()
    stored = _stored(redis_client)
    assert len(stored) == len(NOT_PLAIN) + 2
    got = []
    for raw in stored:
        fast, general = _both_ways(raw)
        assert fast.json_texts is None
        got.append(_check_same(fast, general))
    assert got[0]["args"] == [{"__type__": "float", "__value__": v} for v in ("nan", "inf", "-inf")]
    assert got[1]["args"] == [{"__type__": "datetime", "__value__": "2024-05-06T07:08:09"},
                              {"__type__": "decimal", "__value__": "1.10"},
                              {"__type__": "uuid", "__value__": str(uuid.UUID(int=7))}]
    assert got[2]["args"] != [nested(205)]  # cut at to_jsonable's depth
    assert got[3]["kwargs"] == {"k": {"__type__": "bytes", "__value__": "bytes"}}
    assert [g["protocol"] for g in got] == [2] * len(NOT_PLAIN) + [1, 1]
    assert same(got[-1]["args"], PLAIN[1][0])


def _variant(raw, **changes):
    """A stored Celery envelope with some of its text changed."""
    env = json.loads(raw)
    body = json.loads(base64.b64decode(env["body"]))
    text = changes.pop("body_text", None)
    if text is None:
        text = json.dumps(body, **changes.pop("dumps", {}))
    env["body"] = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return json.dumps(env, **changes.pop("envelope_dumps", {})).encode("utf-8")


def test_hand_changed_envelopes(redis_client, celery_app):
    _send(celery_app, [(["ü", {"a": [1, 2]}], {"k": "€"}, {})])
    (raw,) = _stored(redis_client)
    cases = {
        "raw UTF-8 in the body": (_variant(raw, dumps={"ensure_ascii": False}), True),
        "line breaks between tokens": (_variant(raw, dumps={"indent": 1}), False),
        "envelope with line breaks": (_variant(raw, envelope_dumps={"indent": 1}), False),
        "other separators": (_variant(raw, dumps={"separators": (",", ":")}), False),
        "NaN in the body": (_variant(raw, body_text='[[NaN], {}, {}]'), False),
        "1e400 in the body": (_variant(raw, body_text='[[1e400], {}, {}]'), False),
        "trailing text": (_variant(raw, body_text='[[1], {}, {}]]'), False),
        "body is not JSON": (_variant(raw, body_text='[[1], {}'), False),
        "embed not an object": (_variant(raw, body_text='[[1], {"a": 1}, null]'), True),
        "empty body": (_variant(raw, body_text=''), False),
        "keys in another order": (json.dumps(dict(reversed(json.loads(raw).items()))).encode(), False),
        "bad base64": (raw.replace(b'"body": "', b'"body": "!!', 1), False),
        "not UTF-8": (raw.replace(b'"lang": "py"', b'"lang": "\xff"', 1), False),
        "not JSON": (b"not json at all", False),
        "no headers": (json.dumps({"body": "", "content-type": "application/json"}).encode(), False),
    }
    for name, (data, fast_path) in cases.items():
        fast, general = _both_ways(data)
        assert (fast.json_texts is not None) is fast_path, name
        expected = _check_same(fast, general)
        if name == "raw UTF-8 in the body":
            assert expected["args"] == ["ü", {"a": [1, 2]}] and expected["kwargs"] == {"k": "€"}
        if name in ("bad base64", "not JSON", "not UTF-8", "body is not JSON", "empty body"):
            assert expected["error"], name
        if name == "embed not an object":
            assert expected["embed"] == {} and expected["kwargs"] == {"a": 1}


def test_peek_output_equals_the_general_path(run, redis_url, redis_client, celery_app):
    """peek --all through the CLI, ndjson and json: the values of to_json() the general way."""
    _send(celery_app, PLAIN + NOT_PLAIN)
    redis_client.lpush("celery", b"garbage \xff")
    stored = _stored(redis_client)
    expected = [json.loads(json.dumps(decode_envelope(
        raw, queue="celery", position=i, priority=0, fast=False).to_json())) for i, raw in enumerate(stored)]
    assert [m["priority"] for m in expected].count(5) == 1  # from the properties
    nd = run("peek", "celery", "--all", "-o", "ndjson", "-b", redis_url)
    js = run("peek", "celery", "--all", "-o", "json", "-b", redis_url)
    assert nd.exit_code == js.exit_code == 0, (nd, js)
    lines = nd.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == len(stored) + 1
    for got in (nd.ndjson(), js.json()):
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert same(g, e), (g, e)
    bad = [i for i, m in enumerate(expected) if m["error"]]
    assert len(bad) == 1 and nd.ndjson()[bad[0]]["raw"] == {"__type__": "base64", "__value__": "Z2FyYmFnZSD/"}


def test_a_changed_message_loses_its_json_texts(redis_client, celery_app):
    import dataclasses

    _send(celery_app, PLAIN[:1])
    (raw,) = _stored(redis_client)
    fast, _ = _both_ways(raw)
    assert fast.json_texts is not None
    changed = dataclasses.replace(fast, args=["other"], headers={"h": 1})
    assert changed.json_texts is None  # stale texts are never written
    got = json.loads(jsontext.record_text(changed))
    assert got["args"] == ["other"] and got["headers"] == {"h": 1}
