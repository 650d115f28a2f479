"""Plain unit tests: URLs, the tagged JSON form, the inert unpickler, bounded decompression."""

from __future__ import annotations

import bz2
import datetime as dt
import lzma
import os
import pickle
import zlib

import pytest

from celerytool.codecs.compression import decompress
from celerytool.codecs.inert_pickle import inert_loads
from celerytool.errors import DecodeError, UsageError
from celerytool.jsontext import to_jsonable
from celerytool.urls import parse_url


@pytest.mark.parametrize("raw,kind,host,port,db,vhost", [
    ("redis://localhost:6379/0", "redis", "localhost", 6379, 0, "/"),
    ("redis://:pw@cache:6380/3", "redis", "cache", 6380, 3, "/"),
    ("rediss://u:p@h/1?ssl_cert_reqs=CERT_NONE", "redis", "h", 6379, 1, "/"),
    ("redis+socket:///tmp/r.sock?virtual_host=2", "redis", "localhost", 6379, 2, "/"),
    ("amqp://guest:guest@rabbit:5672/%2F", "amqp", "rabbit", 5672, 0, "/"),
    ("amqp://u:p@rabbit/prod", "amqp", "rabbit", 5672, 0, "prod"),
    ("amqps://u:p@rabbit/prod", "amqp", "rabbit", 5671, 0, "prod"),
    ("pyamqp://rabbit//", "amqp", "rabbit", 5672, 0, "/"),
])
def test_parse_url(raw, kind, host, port, db, vhost):
    u = parse_url(raw)
    assert (u.kind, u.host, u.port, u.db, u.vhost) == (kind, host, port, db, vhost)


def test_failover_and_redaction():
    u = parse_url("amqp://a:s3cret@h1:5672//;amqp://a:s3cret@h2:5672//")
    assert [x.host for x in (u, *u.alternates)] == ["h1", "h2"]
    assert "s3cret" not in u.redacted() and u.redacted().count("***") == 2
    assert u.scrub("failed: a:s3cret@h1") == "failed: a:***@h1"
    assert "pw" not in parse_url("redis://h/0?password=pw").redacted()


@pytest.mark.parametrize("bad", ["", "nonsense", "ftp://x", "redis://h:70000", "redis://h/x", "redis+socket://"])
def test_bad_urls(bad):
    with pytest.raises(UsageError):
        parse_url(bad)


def test_tagged_json_roundtrips_through_kombu():
    import decimal
    import json
    import uuid

    from kombu.utils.json import loads

    value = {"d": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "m": decimal.Decimal("1.25"),
             "b": b"\xff\x00", "t": b"text"}
    back = loads(json.dumps(to_jsonable(value)))
    assert back == value
    assert to_jsonable(uuid.UUID(int=3)) == {"__type__": "uuid", "__value__": str(uuid.UUID(int=3))}
    assert to_jsonable(float("nan")) == {"__type__": "float", "__value__": "nan"}


@pytest.mark.parametrize("proto", range(6))
def test_inert_pickle_runs_nothing(proto, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class EvilEval:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    for evil in (Evil(), EvilEval()):
        out = inert_loads(pickle.dumps(evil, protocol=proto))
        assert not marker.exists()
        assert "system" in repr(out) or "eval" in repr(out)


@pytest.mark.parametrize("proto", range(6))
def test_inert_pickle_keeps_plain_values(proto):
    value = ((1, "x", 2.5, None, True, [1], {"a": {"b": 2}}, dt.date(2020, 1, 1), dt.timedelta(seconds=3)), {}, {})
    assert inert_loads(pickle.dumps(value, protocol=proto)) == value


def test_inert_pickle_refuses_codec_tricks():
    # _codecs.encode(str, 'zlib_codec') would be a decompression bomb / arbitrary codec
    payload = b"c_codecs\nencode\n(Vabc\nVzlib_codec\ntR."
    with pytest.raises(DecodeError):
        inert_loads(payload)


def test_shared_reference_bomb_is_refused():
    x: list = ["a"]
    for _ in range(60):
        x = [x, x]
    data = pickle.dumps(x, protocol=4)
    assert len(data) < 2000
    with pytest.raises(DecodeError, match="expands to more than"):
        inert_loads(data)


@pytest.mark.parametrize("compress,name", [(zlib.compress, "application/x-gzip"), (bz2.compress, "application/x-bz2"),
                                           (lzma.compress, "application/x-lzma")])
def test_bounded_decompression(compress, name):
    data = b"0" * 5_000_000
    assert decompress(compress(data), name, 10_000_000) == data
    with pytest.raises(DecodeError, match="exceeds"):
        decompress(compress(data), name, 1_000_000)
    with pytest.raises(DecodeError):
        decompress(compress(data)[:-8], name, 10_000_000)


def test_sentinel_url_as_celery_writes_it():
    u = parse_url("sentinel://:m%40ster@h1:26379/3;sentinel://h2/3?master_name=mymaster"
                  "&sentinel_password=s-pw")
    assert (u.kind, u.is_sentinel, u.master_name, u.sentinel_password) == ("redis", True, "mymaster", "s-pw")
    assert (u.host, u.port, u.db, u.password) == ("h1", 26379, 3, "m@ster")
    assert [(a.host, a.port) for a in u.alternates] == [("h2", 26379)]
    shown = u.redacted()
    assert "m%40ster" not in shown and "s-pw" not in shown and "master_name=mymaster" in shown
    assert u.scrub("auth m@ster s-pw") == "auth *** ***"
    with pytest.raises(UsageError):
        parse_url("sentinel://h1:26379/0;redis://h2:6379/0")
