"""The fast JSON paths (orjson, plain values) give what the stdlib paths give."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math

import pytest

from celerytool import jsonio

MODES = ["orjson", "stdlib"] if jsonio.orjson is not None else ["stdlib"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    if request.param == "stdlib":
        monkeypatch.setattr(jsonio, "orjson", None)
    return request.param


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


TEXTS = [
    b'{"a": [1, 2.5, null, true, "\\u00fc\\u20ac", "\\ud83d\\ude00"], "b": {}}',
    b"1234567890123456789",  # 19 digits: still an int
    b"[123456789012345678901234567890, -98765432109876543210]",  # past 64 bits
    b"[18446744073709551615, -9223372036854775808, -9223372036854775809]",
    b"[NaN, Infinity, -Infinity]",
    b"[1e400, -0.0, 1e-7, 0.1, 1e16, 5e-324]",
    b'{"a": 1, "a": 2}',
    codecs.BOM_UTF8 + b'{"bom": 1}',
    b'"\\ud800 lone surrogate"',
    '"\u00e9"'.encode(),
    json.dumps(nested(150)).encode(),
    json.dumps(nested(200)).encode(),
    json.dumps(nested(202)).encode(),
    json.dumps(nested(300)).encode(),
]


def same(a, b):
    """Equal values of equal types (NaN equal to NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_parse_reads_what_json_loads_reads(mode, text):
    from celerytool.jsonable import to_jsonable

    for data in (text, text.decode("utf-8", "surrogatepass")):
        try:
            expected = json.loads(data)
        except ValueError:
            continue  # a BOM in text: see test_parse_raises_what_json_loads_raises
        value, plain = jsonio.parse(data) if isinstance(data, bytes) else jsonio.loads_plain(data)
        assert same(value, expected)
        if plain:  # plain promises that the tagged-JSON conversion changes nothing
            assert same(to_jsonable(value), value)


def test_plain_flags(mode):
    assert jsonio.parse(b'{"a": [1, "x"]}') == ({"a": [1, "x"]}, True)
    assert jsonio.parse(b"[NaN]")[1] is False
    assert jsonio.parse(b"[1e400]")[1] is False
    assert jsonio.parse(b"[1.5e300]") == ([1.5e300], True)
    assert jsonio.parse(json.dumps(nested(201)).encode())[1] is False
    assert jsonio.loads_plain(json.dumps(nested(201)))[1] is False
    assert jsonio.parse(json.dumps(nested(200)).encode())[1] is True
    assert jsonio.parse(b'"\\ud800"')[1] is True  # a str all the same


@pytest.mark.parametrize("text", [b"{", b"[1,]", b"\xff", b"nul", b"[1] x"])
def test_parse_raises_what_json_loads_raises(mode, text):
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)) as got:
        jsonio.parse(text)
    assert str(got.value) == str(expected.value)


def test_text_with_a_bom_is_refused_as_json_loads_does(mode):
    raw = codecs.BOM_UTF8 + b"[1]"
    assert jsonio.parse(raw) == ([1], True)
    with pytest.raises(ValueError, match="BOM"):
        jsonio.loads_plain(raw.decode("utf-8"))


@pytest.mark.parametrize("value", [
    {"k": ["ü€😀", 1, 2.5, None, True, {"n": -3}], "ctl": "a\nb\t\"\\\x01\x7f\u2028"},
    [2**70, -(2**65)],  # past 64 bits: the stdlib writes them
    [1e-7, 1e16, 0.00001, -0.0, 123.456],
])
def test_dumps_keeps_values(mode, value):
    text = jsonio.dumps(value)
    assert same(json.loads(text), value)
    assert "\n" not in text and ": " not in text


def test_dumps_text_matches_the_stdlib_without_exponents(mode):
    value = {"a": [1, "ü", None, {"b": 2.5}], "c": "x\ny"}
    assert jsonio.dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_dumps_leaves_other_types_to_the_stdlib(mode):
    with pytest.raises(TypeError):  # orjson would write these; celerytool tags them first
        jsonio.dumps({"when": dt.datetime(2024, 1, 2)})


def test_peek_output_is_the_same_with_and_without_orjson(run, redis_url, celery_app, monkeypatch):
    """Messages sent by Celery, read by peek both ways: the same JSON values."""
    if jsonio.orjson is None:
        pytest.skip("orjson is not installed")
    sent = [
        ([1, "héllo €", {"n": [1, 2.5, None]}], {"k": "v"}),
        ([2**70, -(2**65), 1234567890123456789012], {}),
        ([1e-7, 1e16, 0.1], {"f": -0.0}),
        ([float("nan"), float("inf")], {}),
        ([dt.datetime(2024, 5, 6, 7, 8, 9)], {}),  # kombu tags it: the slow path
        ([nested(199)], {}),
        ([nested(205)], {}),  # deeper than to_jsonable goes
    ]
    for args, kwargs in sent:
        celery_app.send_task("tasks.t", args=args, kwargs=kwargs, serializer="json")
    fast = run("peek", "celery", "--all", "-o", "ndjson", "-b", redis_url)
    monkeypatch.setattr(jsonio, "orjson", None)
    pure = run("peek", "celery", "--all", "-o", "ndjson", "-b", redis_url)
    assert fast.exit_code == pure.exit_code == 0, (fast, pure)
    assert fast.ndjson() == pure.ndjson()
    got = fast.ndjson()
    assert got[0]["args"] == sent[0][0] and got[0]["kwargs"] == sent[0][1]
    assert got[1]["args"] == sent[1][0]
    assert got[2]["args"] == sent[2][0] and got[2]["kwargs"] == {"f": -0.0}
    assert got[3]["args"] == [{"__type__": "float", "__value__": "nan"},
                              {"__type__": "float", "__value__": "inf"}]
    assert got[4]["args"] == [{"__type__": "datetime", "__value__": "2024-05-06T07:08:09"}]
    assert got[5]["args"] == [nested(199)]
    assert got[6]["args"] != [nested(205)]  # cut at to_jsonable's depth, both ways alike
