"""Routing on Redis agrees with kombu's own Channel on the same binding tables.

The tables are written by kombu itself (``Queue.declare`` on a real Redis);
what kombu's ``Channel._lookup`` answers for each routing key is the
expected value; ``send`` (LPUSH into the queues' lists) and ``requeue``
(restore from the unacked hash) must reach exactly those queues.
"""

from __future__ import annotations

import json
import time

import pytest
from kombu import Connection, Exchange, Queue

SEP = "\x06\x16"

# exchange -> (type, [(queue, binding key)])
TABLES = {
    "ex.direct": ("direct", [("d_a", "a"), ("d_b", "b"), ("d_a2", "a")]),
    "ex.topic": ("topic", [("t_star", "a.*"), ("t_hash", "a.#"), ("t_all", "#"), ("t_sb", "*.b"),
                           ("t_exact", "a.b")]),
    "celeryev": ("fanout", [("f_1", "x"), ("f_2", "")]),
}
KEYS = ["a", "b", "c", "a.b", "a.b.c", "x.b", "", "a.", ".b"]
# a row written without a pattern into a topic table (a direct-style declare of the same
# name): kombu's topic lookup matches every routing key with it
EMPTY_PATTERN_ROW = ("ex.topic", "zz", "t_empty")


@pytest.fixture
def kombu_channel(redis_url):
    conn = Connection(redis_url)
    ch = conn.default_channel
    for name, (kind, rows) in TABLES.items():
        exchange = Exchange(name, kind)
        for queue, key in rows:
            Queue(queue, exchange, routing_key=key)(ch).declare()
    ch.client.sadd("_kombu.binding." + EMPTY_PATTERN_ROW[0], SEP.join([EMPTY_PATTERN_ROW[1], "", EMPTY_PATTERN_ROW[2]]))
    yield ch
    conn.release()


def all_queues():
    return sorted({q for _, rows in TABLES.values() for q, _ in rows} | {EMPTY_PATTERN_ROW[2]})


def filled(client) -> dict[str, int]:
    return {q: n for q in all_queues() if (n := client.llen(q))}


CASES = [(ex, key) for ex in TABLES for key in KEYS]


@pytest.mark.parametrize(("exchange", "key"), CASES)
def test_send_routes_as_kombu(exchange, key, kombu_channel, redis_client, redis_url, run):
    kind = TABLES[exchange][0]
    if kind == "fanout":  # kombu publishes fanout with PUB/SUB: no list is written
        expected: set[str] = set()
    else:
        expected = set(kombu_channel._lookup(exchange, key))
    r = run("send", "tasks.route", "--exchange", exchange, "--routing-key", key, "--exchange-type", kind,
            "-b", redis_url, "--no-retry")
    if kind == "direct" and key == "":  # Celery's anonymous-exchange rewrite needs a queue name
        assert r.exit_code == 2, r
        assert filled(redis_client) == {}
    elif expected:
        assert r.exit_code == 0, r
        assert filled(redis_client) == dict.fromkeys(expected, 1)
    else:
        assert r.exit_code == 1, r
        assert "unroutable" in r.stderr
        assert filled(redis_client) == {}


@pytest.mark.parametrize(("exchange", "key"), CASES)
def test_requeue_routes_as_kombu(exchange, key, kombu_channel, redis_client, redis_url, run):
    expected = set(kombu_channel._lookup(exchange, key))
    assert run("send", "tasks.route", "-Q", "tmp", "-b", redis_url).exit_code == 0
    env = json.loads(redis_client.rpop("tmp"))
    tag = env["properties"]["delivery_tag"]
    redis_client.hset("unacked", tag, json.dumps([env, exchange, key]))
    redis_client.zadd("unacked_index", {tag: time.time() - 3600})
    r = run("requeue", "--yes", "-b", redis_url)
    assert r.exit_code == 0, r
    assert filled(redis_client) == dict.fromkeys(expected, 1)
    assert redis_client.hlen("unacked") == (0 if expected else 1)


def test_empty_pattern_row_is_in_the_table(kombu_channel):
    """The tables are what the cases above claim (so the comparison is not empty)."""
    assert set(kombu_channel._lookup("ex.topic", "anything")) == {"t_all", "t_empty"}
    assert set(kombu_channel._lookup("ex.topic", "a.b")) == {"t_star", "t_hash", "t_all", "t_sb",
                                                               "t_exact", "t_empty"}
    assert set(kombu_channel._lookup("ex.direct", "a")) == {"d_a", "d_a2"}
    assert set(kombu_channel._lookup("celeryev", "whatever")) == {"f_1", "f_2"}
