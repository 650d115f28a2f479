"""delayed on Redis: the fast path (brokers/redis/delayed_fast.py) against the full decoder, and
the paged, read-ahead walk of kombu's unacked hash (more entries than a page, holes both ways)."""

from __future__ import annotations

import json
import time

from msgfactory import real_envelope

from celerytool.model import DelayedTask


def _store(client, raw: bytes, tag: str, delivered: float, exchange: str = "", routing_key: str = "celery",
           eta: str | None = None) -> None:
    env = json.loads(raw)
    env["properties"]["delivery_tag"] = tag
    if eta is not None:
        env["headers"]["eta"] = eta
    client.hset("unacked", tag, json.dumps([env, exchange, routing_key]))
    client.zadd("unacked_index", {tag: delivered})


def _rows(run, url: str, *extra: str) -> list[dict]:
    r = run("delayed", "-b", url, "-o", "json", *extra)
    assert r.exit_code == 0, r
    return r.json()


def test_fast_path_gives_the_full_decoders_records(run, redis_url, redis_client, celery_app):
    """The same entries listed twice: as they are (fast path) and with a selection that keeps
    every task (``--task '*'``: the full decoder for each); same records, same order."""
    now = time.time()
    sends = [
        ("tasks.a", (1, "two", [3.5, None]), {"k": {"nested": [1, 2]}}, {"countdown": 600}),
        ("tasks.ünïcode", ("é", "\u2603"), {"ключ": "значение"}, {"countdown": 60}),
        ("tasks.b", (), {}, {"countdown": 7200}),  # beyond the 1 h visibility timeout: delivered again
        ("tasks.c", (1,), {}, {"countdown": 1}),  # another offset (below): shown in UTC
        ("tasks.naive", (1,), {}, {"countdown": 1}),  # no offset (below): UTC, as Celery means it
        ("tasks.d", (2**70,), {"big": 1e300}, {"countdown": 30}),
        ("tasks.e", (1,), {}, {"countdown": 600, "compression": "zlib"}),  # the full decoder anyway
        ("tasks.f", (1,), {}, {}),  # no eta: not delayed
        ("tasks.a", (9,), {}, {"countdown": 600}),
    ]
    for i, (task, args, kwargs, opts) in enumerate(sends):
        raw = real_envelope(celery_app, redis_client, task, args, kwargs, **opts)
        eta = {"tasks.c": "2031-01-02T03:04:05+02:00", "tasks.naive": "2031-01-01T00:00:00"}.get(task)
        _store(redis_client, raw, f"tag-{i}", now - i, eta=eta)
    # the same envelope held twice (a tie on due time: delivery order decides) and routed by an exchange
    raw = real_envelope(celery_app, redis_client, "tasks.tie", (1,), countdown=900)
    _store(redis_client, raw, "tie-2", now - 5)
    _store(redis_client, raw.replace(b'"tasks.tie"', b'"tasks.tie2"'), "tie-1", now - 50)
    redis_client.sadd("_kombu.binding.ex", "rk\x06\x16\x06\x16elsewhere")
    _store(redis_client, raw.replace(b'"tasks.tie"', b'"tasks.routed"'), "routed", now - 7, "ex", "rk")

    fast, full = _rows(run, redis_url), _rows(run, redis_url, "--task", "*")
    assert [r["task"] for r in fast] == [r["task"] for r in full]
    assert [r["task"] for r in fast][:3] == ["tasks.d", "tasks.ünïcode", "tasks.a"]
    assert [r["task"] for r in fast if r["task"].startswith("tasks.tie")] == ["tasks.tie2", "tasks.tie"]
    assert "tasks.f" not in [r["task"] for r in fast]
    for a, b in zip(fast, full, strict=True):
        assert abs(a.pop("left") - b.pop("left")) < 5, (a, b)
        assert a == b
    routed = next(r for r in fast if r["task"] == "tasks.routed")
    assert routed["queue"] == "elsewhere"
    assert [r["task"] for r in _rows(run, redis_url, "elsewhere")] == ["tasks.routed"]
    celery = [r["task"] for r in _rows(run, redis_url, "celery")]  # the fast and the fully decoded ones
    assert celery == [r["task"] for r in fast if r["task"] != "tasks.routed"] and "tasks.e" in celery
    assert [r["delivered_again"] for r in fast if r["task"] == "tasks.b"] == [True]
    assert next(r for r in fast if r["task"] == "tasks.c")["due"] == "2031-01-02T01:04:05+00:00"
    assert next(r for r in fast if r["task"] == "tasks.naive")["due"] == "2031-01-01T00:00:00+00:00"
    table = run("delayed", "-b", redis_url)
    assert table.exit_code == 0 and f"{len(fast)} task(s) waiting" in table.stderr, table


def test_delayed_tasks_json_text_is_its_to_json():
    """The kept-text shortcut of DelayedTask gives what dumps(to_json()) gives."""
    from celerytool.jsontext import dumps

    for fields in [
        ("id-1", "tasks.a", [1], {}, "celery", "2030-01-01T00:00:00+00:00", 12.3456, "unacked", False),
        ("ïd\u2603", "tâsk\x7f\"\\", [], {"a": 1}, None, "2030-01-01T00:00:00.5+00:00", -0.0004, "unacked", True),
        ("x", "y", [1e300], {}, "q\u2028", "d", 1e17, "unacked", False),
        ("x", None, [], {}, None, None, None, "celery_delayed_3", False),
    ]:
        texts = (json.dumps(fields[2]), json.dumps(fields[3]))
        task = DelayedTask(*fields, texts)
        assert json.loads(task.json_text()) == task.to_json() == json.loads(dumps(DelayedTask(*fields).to_json()))


def test_pages_with_holes_both_ways(run, redis_url, redis_client, celery_app):
    """More entries than a page (PAGE), index entries without an entry and entries without an
    index score: every listed one once, in due order, the holes told; a stopped walk (--limit
    on unacked) leaves the connection usable."""
    from celerytool.brokers.redis.unacked import PAGE

    raw = real_envelope(celery_app, redis_client, "tasks.many", (1,), countdown=3000)
    env = json.loads(raw)
    now = time.time()
    n = 2 * PAGE + 345
    pipe = redis_client.pipeline(transaction=False)
    for i in range(n):
        env["headers"]["id"] = f"id-{i:05d}"
        env["headers"]["eta"] = f"2030-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
        pipe.hset("unacked", f"t{i}", json.dumps([env, "", "celery"]))
        pipe.zadd("unacked_index", {f"t{i}": now - (n - i) % 97})
    pipe.zadd("unacked_index", {"gone-1": now, "gone-2": now - 3})  # acked meanwhile
    pipe.hdel("unacked", "t7")
    pipe.zrem("unacked_index", "t8", "t9")  # never in the index: not listed, told
    pipe.execute()
    r = run("delayed", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    ids = [row["id"] for row in r.json()]
    assert ids == [f"id-{i:05d}" for i in sorted(set(range(n)) - {7, 8, 9}, key=lambda i: (i // 60 % 60, i % 60))]
    assert "2 unacked entries have no unacked_index score" in r.stderr
    assert len(run("unacked", "-b", redis_url, "-n", "3", "-o", "json").json()) == 3
    assert len(run("delayed", "-b", redis_url, "-n", "5", "-o", "json").json()) == 5


def test_undecodable_entries_are_told_not_left_out_unseen(run, redis_url, redis_client, celery_app):
    """An unacked entry that cannot be decoded may be a delayed task: `delayed` says how many it
    could not list (on stderr, exit 0) and lists the rest."""
    raw = real_envelope(celery_app, redis_client, "tasks.ok", (1,), countdown=3000)
    env = json.loads(raw)
    bad_body = dict(env, body="!!!not base64!!!")
    redis_client.hset("unacked", mapping={"good": json.dumps([env, "", "celery"]), "junk": "garbage",
                                          "badbody": json.dumps([bad_body, "", "celery"])})
    redis_client.zadd("unacked_index", {"good": time.time(), "junk": time.time(), "badbody": time.time()})
    r = run("delayed", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    assert [row["task"] for row in r.json()] == ["tasks.ok"]
    assert "2 unacked entries could not be decoded" in r.stderr, r
    assert redis_client.hlen("unacked") == 3  # read-only
