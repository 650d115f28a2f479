"""How a selected purge / move walks a RabbitMQ queue: held in place on classic queues (across
channel segments), re-published on quorum queues, and header-only selections never decode a body."""

from __future__ import annotations

import pika
import pytest
from amqp_helpers import depth, wait_for

from celerytool.brokers.amqp import walk


def publish(ch, queue: str, names: list[str], arguments: dict | None = None) -> list[str]:
    """Protocol-2 messages with the given task names; their ids, in order."""
    before = ch.queue_declare(queue, durable=True, arguments=arguments).method.message_count
    ids = []
    for i, name in enumerate(names):
        tid = f"{queue}-{i}"
        ch.basic_publish("", queue, f"[[{i}], {{}}, {{}}]".encode(), pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={"lang": "py", "task": name, "id": tid}))
        ids.append(tid)
    wait_for(lambda: depth(ch, queue) == before + len(names))  # all enqueued before the command counts
    return ids


def read_all(url: str, queue: str) -> list[tuple[str, bool, dict]]:
    """(id, redelivered, headers) of every ready message, removing them."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    out = []
    while True:
        method, props, _ = ch.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append((props.headers["id"], method.redelivered, props.headers))
    conn.close()
    return out


def test_classic_queue_keeps_order_across_segments_without_copies(run, amqp_url, pika_channel, monkeypatch):
    """Kept messages are held (several channels of SEGMENT) and given back in place, marked redelivered."""
    monkeypatch.setattr(walk, "SEGMENT", 64)
    names = ["tasks.keep", "tasks.keep", "tasks.drop"] * 150  # 450 messages: 8 segments
    ids = publish(pika_channel, "work", names)
    pika_channel.queue_declare("slow", durable=True)
    r = run("purge", "work", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert (r.json()["removed"], r.json()["kept"], r.json()["examined"]) == (150, 300, 450)
    kept = [i for i, n in zip(ids, names, strict=True) if n == "tasks.keep"]
    after = read_all(amqp_url, "work")
    assert [i for i, _, _ in after] == kept  # in their places, each once
    assert all(redelivered for _, redelivered, _ in after)  # the consequence of holding them
    # move, on the same queue refilled: order kept on both sides
    ids = publish(pika_channel, "work", names)
    r = run("move", "work", "slow", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0 and r.json()["moved"] == 150, r
    assert [i for i, _, _ in read_all(amqp_url, "slow")] == [i for i, n in zip(ids, names, strict=True)
                                                           if n == "tasks.drop"]
    assert [i for i, _, _ in read_all(amqp_url, "work")] == [i for i, n in zip(ids, names, strict=True)
                                                           if n == "tasks.keep"]


def test_quorum_queue_republishes_kept_messages(run, amqp_url, pika_channel):
    """Quorum queues count deliveries: kept messages are re-published, never returned by nack."""
    quorum = {"x-queue-type": "quorum"}
    names = ["tasks.keep", "tasks.drop"] * 400  # 800: more than the re-publish window's batches
    ids = publish(pika_channel, "qq", names, quorum)
    publish(pika_channel, "qdst", [], quorum)
    r = run("purge", "qq", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert (r.json()["removed"], r.json()["examined"]) == (400, 800)
    after = read_all(amqp_url, "qq")
    assert [i for i, _, _ in after] == ids[0::2]  # nobody else published: the order is kept too
    # fresh copies: not redelivered, no delivery counted towards x-delivery-limit
    # (the broker itself writes x-delivery-count into what it delivers: 0 for a first delivery)
    assert not any(redelivered or headers.get("x-delivery-count", 0) for _, redelivered, headers in after)
    ids = publish(pika_channel, "qq", names, quorum)
    r = run("move", "qq", "qdst", "--task", "tasks.keep", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0 and r.json()["moved"] == 400, r
    assert [i for i, _, _ in read_all(amqp_url, "qdst")] == ids[0::2]
    assert [i for i, _, _ in read_all(amqp_url, "qq")] == ids[1::2]


@pytest.mark.parametrize("hold", [True, False])
def test_both_ways_examine_each_message_once(amqp_url, pika_channel, hold):
    """Held or re-published, on the same classic queue: n0 examined, no copy examined, none left out."""
    from celerytool.brokers import open_broker
    from celerytool.brokers.base import Control
    from celerytool.selection import Selection
    from celerytool.urls import parse_url

    names = ["tasks.a", "tasks.b", "tasks.c", "tasks.d"] * 1300  # 5,200 > the re-publish window
    ids = publish(pika_channel, "both", names)
    broker = open_broker(parse_url(amqp_url))
    ops = broker.ops()
    ops.hold_kept = hold
    try:
        result = ops.purge("both", Selection.build(tasks=["tasks.b"]), Control())
    finally:
        broker.close()
    assert (result.examined, result.matched, result.done, result.kept) == (5200, 1300, 1300, 3900)
    assert broker.warnings == []
    assert [i for i, _, _ in read_all(amqp_url, "both")] == [
        i for i, n in zip(ids, names, strict=True) if n != "tasks.b"]


def test_header_only_selection_decodes_no_body(run, amqp_url, pika_channel, monkeypatch):
    """--task / --id read the AMQP headers; a body is decoded only for --where or to show it."""
    from celerytool.brokers.amqp import ops

    def no_decode(*args, **kwargs):
        raise AssertionError("a body was decoded")

    ids = publish(pika_channel, "hdr", ["tasks.a", "tasks.b"] * 20)
    with monkeypatch.context() as m:
        m.setattr(walk, "to_message", no_decode)
        m.setattr(ops, "to_message", no_decode)
        r = run("purge", "hdr", "--task", "tasks.b", "--id", ids[1], "-b", amqp_url, "-y", "-o", "json")
        assert r.exit_code == 0 and r.json()["removed"] == 1, r
        pika_channel.queue_declare("hdr2", durable=True)
        r = run("move", "hdr", "hdr2", "--task", "tasks.a", "-b", amqp_url, "-y", "-o", "json")
        assert r.exit_code == 0 and r.json()["moved"] == 20, r
    r = run("purge", "hdr", "--where", "args[0] >= 30", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0 and r.json()["removed"] == 5, r  # the body is read for --where
    assert depth(pika_channel, "hdr") == 14 and depth(pika_channel, "hdr2") == 20


def test_stream_queue_refuses_a_selected_purge(run, amqp_url, pika_channel):
    """A stream keeps every message: nothing can be taken out of it, and nothing is copied into it."""
    publish(pika_channel, "log", ["tasks.a", "tasks.b"] * 3, {"x-queue-type": "stream"})
    for args in (["purge", "log", "--task", "tasks.a", "-y"], ["move", "log", "other", "--task", "tasks.a", "-y"]):
        if args[0] == "move":
            pika_channel.queue_declare("other", durable=True)
        r = run(*args, "-b", amqp_url)
        assert r.exit_code == 2 and "stream queue" in r.stderr, r
    assert depth(pika_channel, "log") == 6 and depth(pika_channel, "other") == 0


def test_a_selected_purge_ends_when_the_queue_is_whole(run, amqp_url, pika_channel):
    """20,000 messages, 10% selected: right when the command returns, a passive declare of our own
    counts every kept message (RabbitMQ requeues the held ones after the nack; without the wait
    the count lagged: 9,000 of 18,000 on 4.0.5)."""
    names = ["tasks.keep"] * 9 + ["tasks.drop"]
    ch = pika_channel
    ch.queue_declare("whole", durable=True)
    for i in range(20_000):
        ch._impl.basic_publish("", "whole", f"[[{i}], {{}}, {{}}]".encode(), pika.BasicProperties(
            content_type="application/json", delivery_mode=2,
            headers={"lang": "py", "task": names[i % 10], "id": f"w-{i}"}))
        if i % 1000 == 999:
            ch.connection.process_data_events(time_limit=0)
    wait_for(lambda: depth(ch, "whole") == 20_000, timeout=60)
    r = run("purge", "whole", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert depth(ch, "whole") == 18_000  # at once: no wait_for here
    assert (r.json()["removed"], r.json()["kept"]) == (2_000, 18_000)


def test_quorum_copies_start_with_a_fresh_delivery_count(run, amqp_url, pika_channel):
    """Kept (re-published) and moved copies leave the broker's x-delivery-count of the original
    out: on RabbitMQ 4 a copy would otherwise carry the old count, as if it had been returned."""
    q = {"x-queue-type": "quorum"}
    names = ["tasks.keep", "tasks.drop", "tasks.move"] * 3
    publish(pika_channel, "qw", names, q)
    pika_channel.queue_declare("qdst", durable=True, arguments=q)
    for _ in range(2):  # two returns: the originals now carry x-delivery-count 2
        got = 0
        while pika_channel.basic_get("qw", auto_ack=False)[0] is not None:
            got += 1
        assert got == 9
        pika_channel.basic_nack(0, multiple=True, requeue=True)
        wait_for(lambda: depth(pika_channel, "qw") == 9)
    assert run("purge", "qw", "--task", "tasks.drop", "-b", amqp_url, "-y").exit_code == 0
    assert run("move", "qw", "qdst", "--task", "tasks.move", "-b", amqp_url, "-y").exit_code == 0
    kept, moved = read_all(amqp_url, "qw"), read_all(amqp_url, "qdst")
    assert len(kept) == 3 and len(moved) == 3
    assert [h.get("x-delivery-count", 0) for _, _, h in kept + moved] == [0] * 6
