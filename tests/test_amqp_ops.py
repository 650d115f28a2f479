"""purge / move / export / import on the real RabbitMQ (session vhost), with messages sent by Celery."""

from __future__ import annotations

import json

import pika
from amqp_helpers import depth, drain_ids

PROPS = ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id", "reply_to",
         "message_id", "type", "app_id")


def snapshot(url, queue):
    """[(body, headers, properties)] of every ready message, read without ack on a connection
    of its own and given back when it closes (the queue keeps its order)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    out = []
    try:
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=False)
            if method is None:
                return out
            out.append((body, props.headers, {k: getattr(props, k) for k in PROPS}))
    finally:
        conn.close()


def send(app, names, queue="celery", **opts):
    return [app.send_task(name, (i, "h\u00e9llo"), {"n": i}, queue=queue, **opts).id for i, name in enumerate(names)]


def test_purge_whole_queue(run, amqp_url, amqp_celery_app, pika_channel):
    send(amqp_celery_app, ["tasks.a"] * 7)
    r = run("purge", "celery", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] == 7 and r.json()["kept"] == 0
    assert depth(pika_channel, "celery") == 0


def test_filtered_purge_removes_exactly_the_matching(run, amqp_url, amqp_celery_app, pika_channel):
    names = ["tasks.keep", "tasks.drop", "tasks.drop", "tasks.keep"] * 150 + ["tasks.keep"]  # > one batch
    ids = send(amqp_celery_app, names)
    keep = [i for i, n in zip(ids, names, strict=True) if n == "tasks.keep"]
    before = {h["id"]: (b, h, p) for b, h, p in snapshot(amqp_url, "celery")}
    r = run("purge", "celery", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    out = r.json()
    assert (out["removed"], out["kept"], out["examined"]) == (300, len(keep), len(names))
    after = snapshot(amqp_url, "celery")
    assert [h["id"] for _, h, _ in after] == keep  # nobody else published: the order is kept too
    for body, headers, props in after:  # re-published unchanged
        assert (body, headers, props) == before[headers["id"]]


def test_filtered_purge_with_where_and_limit(run, amqp_url, amqp_celery_app, pika_channel):
    ids = send(amqp_celery_app, ["tasks.x"] * 10)
    r = run("purge", "celery", "--where", "kwargs.n >= 4", "--limit", "3", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["removed"] == 3
    assert sorted(drain_ids(pika_channel, "celery")) == sorted(ids[:4] + ids[7:])


def test_move_between_queues_keeps_every_message_once(run, amqp_url, amqp_celery_app, pika_channel):
    pika_channel.queue_declare("slow", durable=True)
    names = ["tasks.fast", "tasks.slow"] * 40
    ids = send(amqp_celery_app, names)
    slow = [i for i, n in zip(ids, names, strict=True) if n == "tasks.slow"]
    r = run("move", "celery", "slow", "--task", "tasks.slow", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["moved"] == 40 and r.json()["to"] == "slow"
    assert drain_ids(pika_channel, "slow") == slow
    assert drain_ids(pika_channel, "celery") == [i for i in ids if i not in slow]
    # the whole queue, and to a queue that does not exist
    more = send(amqp_celery_app, ["tasks.a"] * 5)
    assert run("move", "celery", "slow", "-b", amqp_url, "-y").exit_code == 0
    assert drain_ids(pika_channel, "slow") == more and depth(pika_channel, "celery") == 0
    assert run("move", "celery", "nowhere", "-b", amqp_url, "-y").exit_code == 66


def test_move_to_redis(run, amqp_url, amqp_celery_app, pika_channel, redis_url, redis_client, celery_app):
    from msgfactory import all_items

    ids = send(amqp_celery_app, ["tasks.a", "tasks.b", "tasks.a"])
    r = run("move", "celery", "celery", "--task", "tasks.a", "--to-broker", redis_url, "-b", amqp_url, "-y")
    assert r.exit_code == 0, r
    assert drain_ids(pika_channel, "celery") == [ids[1]]
    moved = [json.loads(x) for x in all_items(redis_client, "celery")]
    assert [m["headers"]["id"] for m in moved] == [ids[0], ids[2]]
    assert moved[0]["properties"]["delivery_info"]["routing_key"] == "celery"


def test_export_purge_import_round_trip(run, amqp_url, pika_channel, tmp_path):
    from conftest import make_app

    app = make_app(amqp_url, backend="disabled://")
    try:
        ids = []
        for ser, comp in [("json", None), ("pickle", "zlib"), ("msgpack", "bzip2"), ("yaml", None)]:
            ids += send(app, [f"tasks.{ser}"], serializer=ser, compression=comp)
    finally:
        app.close()
    before = snapshot(amqp_url, "celery")
    out = tmp_path / "q.ndjson"
    r = run("export", "celery", "-b", amqp_url, "--file", out)
    assert r.exit_code == 0, r
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ids and all(x["broker"] == "amqp" for x in lines)
    assert lines[0]["task"] == "tasks.json" and lines[0]["kwargs"] == {"n": 0}
    assert snapshot(amqp_url, "celery") == before  # export alone changes nothing
    assert run("purge", "celery", "-b", amqp_url, "-y").exit_code == 0
    assert depth(pika_channel, "celery") == 0
    r = run("import", out, "celery", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["imported"] == 4
    assert snapshot(amqp_url, "celery") == before


def test_export_remove_selected(run, amqp_url, amqp_celery_app, pika_channel, tmp_path):
    names = ["tasks.keep", "tasks.take"] * 5
    ids = send(amqp_celery_app, names)
    out = tmp_path / "take.ndjson"
    r = run("export", "celery", "--task", "tasks.take", "--remove", "-y", "-b", amqp_url, "--file", out)
    assert r.exit_code == 0, r
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ids[1::2]
    assert drain_ids(pika_channel, "celery") == ids[0::2]


def test_dry_run_changes_nothing(run, amqp_url, amqp_celery_app, pika_channel, tmp_path):
    pika_channel.queue_declare("other", durable=True)
    send(amqp_celery_app, ["tasks.a", "tasks.b", "tasks.a"])
    before = snapshot(amqp_url, "celery")
    r = run("purge", "celery", "--task", "tasks.a", "--dry-run", "-b", amqp_url, "-o", "json")
    assert r.exit_code == 0, r
    assert (r.json()["matched"], r.json()["removed"], r.json()["dry_run"]) == (2, 0, True)
    r = run("purge", "celery", "--task", "tasks.a", "--dry-run", "-b", amqp_url)
    assert r.stdout.count("tasks.a") == 2 and "tasks.b" not in r.stdout, r  # the listing
    r = run("purge", "celery", "--dry-run", "-b", amqp_url)
    assert r.exit_code == 0 and "would remove 3 of 3" in r.stderr, r
    assert run("move", "celery", "other", "--dry-run", "-b", amqp_url).exit_code == 0
    r = run("export", "celery", "--remove", "--dry-run", "-b", amqp_url, "--file", tmp_path / "x")
    assert r.exit_code == 0 and "would export 3" in r.stderr, r
    assert not (tmp_path / "x").exists()
    assert snapshot(amqp_url, "celery") == before and depth(pika_channel, "other") == 0


def test_redis_only_commands_say_so(run, amqp_url):
    for cmd in (["unacked"], ["requeue", "-y"]):
        r = run(*cmd, "-b", amqp_url)
        assert r.exit_code == 2 and "Redis-only" in r.stderr, r


def test_missing_queue_and_bad_file(run, amqp_url, pika_channel, tmp_path):
    assert run("purge", "nope", "-b", amqp_url, "-y").exit_code == 66
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"v": 1, "broker": "amqp", "queue": "q", "raw": "x", "amqp": 5}\n')
    pika_channel.queue_declare("q", durable=True)
    r = run("import", bad, "q", "-b", amqp_url)
    assert r.exit_code == 65 and "bad.ndjson:1" in r.stderr, r
    assert depth(pika_channel, "q") == 0


def test_filtered_purge_while_producing_and_consuming(run, amqp_url, amqp_celery_app):
    """Every non-matching message survives (queued or consumed, once); no old matching one stays."""
    import threading

    from conftest import make_app

    names = ["tasks.keep", "tasks.drop"] * 300
    ids = send(amqp_celery_app, names)
    consumed: list[str] = []
    produced: list[tuple[str, str]] = []
    stop = threading.Event()

    def consume():
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=5)
        ch.basic_consume("celery", lambda c, m, p, b: (consumed.append(p.headers["id"]),
                                                        c.basic_ack(m.delivery_tag)))
        while not stop.is_set():
            conn.process_data_events(time_limit=0.02)
        conn.close()

    def produce():
        app = make_app(amqp_url, backend="disabled://")
        try:
            while not stop.is_set() and len(produced) < 300:
                name = "tasks.keep" if len(produced) % 2 else "tasks.drop"
                produced.append((app.send_task(name, (0,), queue="celery").id, name))
        finally:
            app.close()

    threads = [threading.Thread(target=consume), threading.Thread(target=produce)]
    for t in threads:
        t.start()
    try:
        r = run("purge", "celery", "--task", "tasks.drop", "-b", amqp_url, "-y", "-o", "json")
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert r.exit_code == 0, r
    remaining = [h["id"] for _, h, _ in snapshot(amqp_url, "celery")]
    everywhere = consumed + remaining
    keep = [i for i, n in zip(ids, names, strict=True) if n == "tasks.keep"]
    keep += [i for i, n in produced if n == "tasks.keep"]
    assert sorted(i for i in everywhere if i in set(keep)) == sorted(keep)  # each exactly once
    old_drop = {i for i, n in zip(ids, names, strict=True) if n == "tasks.drop"}
    assert not old_drop & set(remaining)
    assert len(everywhere) == len(set(everywhere))


def test_redis_export_imports_into_rabbitmq(run, redis_url, celery_app, amqp_url, pika_channel, tmp_path):
    ids = [celery_app.send_task("tasks.r", (i,), {"k": "v"}).id for i in range(4)]
    out = tmp_path / "r.ndjson"
    assert run("export", "celery", "-b", redis_url, "--file", out).exit_code == 0
    pika_channel.queue_declare("celery", durable=True)
    r = run("import", out, "celery", "-b", amqp_url, "-y", "-o", "json")
    assert r.exit_code == 0 and r.json()["imported"] == 4, r
    msgs = run("peek", "celery", "-n", "10", "-b", amqp_url, "-o", "json").json()
    assert [(m["id"], m["task"], m["args"], m["kwargs"]) for m in msgs] == [
        (i, "tasks.r", [n], {"k": "v"}) for n, i in enumerate(ids)]
