"""celerytool summary: counts per field equal what the test sent, on Redis and RabbitMQ; nothing changes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

UTC = dt.timezone.utc


def send_mix(app, queue):
    """Send a known mix; return one dict per message of what was asked for."""
    base = dt.datetime(2031, 5, 4, 10, 0, tzinfo=UTC)
    sent = []

    def send(task, args=(), kwargs=None, **opts):
        app.send_task(task, args, kwargs or {}, queue=queue, **opts)
        eta = opts.get("eta")
        sent.append({"task": task, "kwargs": kwargs or {}, "retries": opts.get("retries", 0),
                     "eta": eta.isoformat() if eta else None, "priority": opts.get("priority")})

    for i in range(7):
        send("billing.charge", (i,), {"tenant": "acme" if i % 2 else "globex"})
    for i in range(3):
        send("mail.send", (i,), {"tenant": "acme"}, retries=1 if i else 0)
    for i in range(4):
        send("reports.build", (i,), {"tenant": "initech"}, eta=base + dt.timedelta(minutes=50 * i))
    send("mail.send", ("x" * 5000,), {}, priority=5)
    return sent


def expected(sent, key):
    out = defaultdict(lambda: {"count": 0, "retries": 0, "etas": []})
    for m in sent:
        row = out[key(m)]
        row["count"] += 1
        row["retries"] += 1 if m["retries"] else 0
        if m["eta"]:
            row["etas"].append(m["eta"])
    return out


def check(rows, exp):
    assert {r["value"] for r in rows} == set(exp)
    for r in rows:
        e = exp[r["value"]]
        assert (r["count"], r["retries"]) == (e["count"], e["retries"]), r
        if e["etas"]:
            assert (_t(r["oldest_eta"]), _t(r["newest_eta"])) == (_t(min(e["etas"])), _t(max(e["etas"])))
        else:
            assert r["oldest_eta"] is None and r["newest_eta"] is None
        assert r["bytes"] > 0
    counts = [r["count"] for r in rows]
    assert counts == sorted(counts, reverse=True)


def _t(text):
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def summary(run, url, queue, *extra):
    r = run("summary", queue, "-b", url, "-o", "json", *extra)
    assert r.exit_code == 0, r
    return r.json()


def test_redis_summary_counts_what_was_sent(run, redis_url, redis_client, celery_app):
    sent = send_mix(celery_app, "work")
    before = [redis_client.lrange(k, 0, -1) for k in (b"work", b"work\x06\x163")]
    rows = summary(run, redis_url, "work")
    check(rows, expected(sent, lambda m: m["task"]))
    assert sum(r["bytes"] for r in rows) == sum(len(x) for lst in before for x in lst)
    check(summary(run, redis_url, "work", "--by", "kwargs.tenant"), expected(sent, lambda m: m["kwargs"].get("tenant")))
    check(summary(run, redis_url, "work", "--by", "retries"), expected(sent, lambda m: m["retries"]))
    by_hour = expected(sent, lambda m: m["eta"] and _t(m["eta"]).strftime("%Y-%m-%dT%H:00"))
    rows = summary(run, redis_url, "work", "--by", "eta")
    assert {r["value"]: r["count"] for r in rows} == {k or None: v["count"] for k, v in by_hour.items()}
    # a selection narrows the census; the fast path and the full decode agree
    rows = summary(run, redis_url, "work", "--task", "mail.*")
    check(rows, expected([m for m in sent if m["task"] == "mail.send"], lambda m: m["task"]))
    slow = summary(run, redis_url, "work", "--where", "size > 0")
    assert slow == summary(run, redis_url, "work")
    # nothing changed
    assert [redis_client.lrange(k, 0, -1) for k in (b"work", b"work\x06\x163")] == before


def test_redis_summary_table_and_missing_queue(run, redis_url, celery_app):
    send_mix(celery_app, "work")
    r = run("summary", "work", "-b", redis_url)
    assert r.exit_code == 0, r
    assert r.stdout.splitlines()[0].split()[:3] == ["task", "count", "bytes"]
    assert r.stdout.splitlines()[1].split()[:2] == ["billing.charge", "7"]
    assert "15 message(s) in 3 group(s) by task" in r.stderr
    r = run("summary", "nope", "-b", redis_url)
    assert r.exit_code == 66
    r = run("summary", "work", "--by", "task == 1", "-b", redis_url)
    assert r.exit_code == 2


def test_rabbitmq_summary_counts_what_was_sent(run, amqp_url, amqp_celery_app, pika_channel):
    sent = send_mix(amqp_celery_app, "work")
    r = run("summary", "work", "-b", amqp_url, "-o", "json")
    assert r.exit_code == 0, r
    check(r.json(), expected(sent, lambda m: m["task"]))
    assert "nack(requeue=True)" in r.stderr and "as peek does" in r.stderr
    rows = summary(run, amqp_url, "work", "--by", "kwargs.tenant")
    check(rows, expected(sent, lambda m: m["kwargs"].get("tenant")))
    # every message is back in the queue
    assert pika_channel.queue_declare("work", passive=True).method.message_count == len(sent) == 15
