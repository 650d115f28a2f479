"""A selected purge and a move of 50,000 messages on RabbitMQ, cut at a random moment.

The command runs as its own process and is either killed (SIGKILL) or has its
connection closed by the broker (`rabbitmqctl close_all_connections` for the
test's own vhost) once a random share of the queue has been consumed.  Nothing
may be lost: every message that was not to be removed is still queued, in SRC
or (moved) in DST.  Duplicates are allowed (at-least-once) and reported.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest
from amqp_helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
MATCH = "tasks.match"


def publish_mixed(url: str, queue: str, n: int, arguments: dict | None = None) -> list[tuple[str, str]]:
    """n protocol-2 messages, every tenth of task MATCH; [(id, task)] in queue order."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, arguments=arguments)
    sent = []
    for i in range(n):
        task = MATCH if i % 10 == 9 else "tasks.keep"
        tid = f"{queue}-{i}"
        body = f'[[{i}], {{}}, {{"callbacks": null, "errbacks": null, "chain": null, "chord": null}}]'.encode()
        ch._impl.basic_publish("", queue, body, pika.BasicProperties(  # no flush per message: fast
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={"lang": "py", "task": task, "id": tid, "root_id": tid, "retries": 0}))
        sent.append((tid, task))
        if i % 1000 == 999:
            conn.process_data_events(time_limit=0)
    while ch.queue_declare(queue, passive=True).method.message_count < n:
        conn.process_data_events(time_limit=0.1)
    conn.close()
    return sent


def ready(url: str, queue: str) -> int:
    """Ready messages, on a connection of its own that is closed at once (the fault must not hit it)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def settled(url: str, queues: list[str]) -> dict[str, int]:
    """Wait until the broker has requeued everything (counts unchanged for 1.5 s)."""
    last: list[dict[str, int]] = []

    def stable():
        last.append({q: ready(url, q) for q in queues})
        return len(last) >= 4 and last[-1] == last[-2] == last[-3] == last[-4]

    wait_for(stable, timeout=60, every=0.5)
    return last[-1]


def drain(url: str, queue: str, count: int) -> list[str]:
    """The ids of ``count`` ready messages, consumed with auto-ack (fast)."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ids: list[str] = []
    ch.basic_consume(queue, lambda c, m, p, b: ids.append(p.headers["id"]), auto_ack=True)
    deadline = time.monotonic() + 120
    while len(ids) < count and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.5)
    conn.close()
    assert len(ids) == count, (len(ids), count)
    return ids


CASES = [
    ("purge", "kill", "classic", 50_000),
    ("move", "kill", "classic", 50_000),
    ("purge", "close", "classic", 50_000),
    ("move", "close", "classic", 50_000),
    ("purge", "kill", "quorum", 20_000),  # the re-publishing path
    ("move", "close", "quorum", 20_000),
]


@pytest.mark.parametrize(("action", "fault", "qtype", "n"), CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_cut_at_a_random_moment_loses_nothing(amqp_url, rabbit_vhost, action, fault, qtype, n):
    args = {"x-queue-type": qtype} if qtype != "classic" else None
    sent = publish_mixed(amqp_url, "src", n, args)
    queues = ["src"]
    if action == "move":
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        conn.channel().queue_declare("dst", durable=True)
        conn.close()
        queues.append("dst")
    cmd = [sys.executable, "-m", "celerytool", action, "src", *(["dst"] if action == "move" else []),
           "--task", MATCH, "-b", amqp_url, "-y", "-o", "json"]
    # The moment: a random share of SRC consumed (a classic queue's ready count falls as the walk
    # holds its messages); on a quorum queue, whose copies go back to SRC, a random delay once the
    # walk has begun.  rabbitmqctl takes a second or two to act: its moments are drawn earlier.
    # Seeded and printed: CELERYTOOL_TEST_SEED=<seed> replays a failing moment.  A quorum walk of
    # 20,000 takes about 1-2 s on a quiet machine: a kill is drawn within its first 0.6 s.
    seed = int(os.environ.get("CELERYTOOL_TEST_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"\nfault moment seed: {seed}")
    share = rng.uniform(0.05, 0.6 if fault == "kill" else 0.25)
    delay = rng.uniform(0.0, 0.6 if fault == "kill" else 0.5)
    target = n * (1 - share) if qtype == "classic" else n - 1
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: proc.poll() is not None or ready(amqp_url, "src") <= target, timeout=120, every=0.05)
        if qtype != "classic":
            time.sleep(delay)
        assert proc.poll() is None, f"finished before the fault (seed {seed}): {proc.communicate()}"
        if fault == "kill":
            proc.kill()
        else:
            rabbit_vhost.node.rabbitmqctl("close_all_connections", "--vhost", rabbit_vhost.name,
                                          "celerytool fault test")
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if fault == "kill":
        assert proc.returncode == -9
    else:  # one line on stderr, exit 69
        assert proc.returncode == 69 and err.count("\n") == 1 and "lost" in err, (proc.returncode, err)
    counts = settled(amqp_url, queues)
    found = {q: drain(amqp_url, q, counts[q]) for q in queues}
    everywhere = [i for q in queues for i in found[q]]
    expected = {tid for tid, task in sent if task != MATCH} if action == "purge" else {tid for tid, _ in sent}
    missing = expected - set(everywhere)
    assert not missing, f"{len(missing)} message(s) lost, e.g. {sorted(missing)[:5]}"
    assert set(everywhere) <= {tid for tid, _ in sent}
    if action == "move":
        tasks = dict(sent)
        assert all(tasks[i] == MATCH for i in found["dst"])  # only selected messages moved
    duplicates = len(everywhere) - len(set(everywhere))
    moment = f"~{share:.0%} consumed" if qtype == "classic" else f"{delay:.2f} s after the start"
    print(f"\n{action} {n:,} ({qtype}) cut by {fault} {moment}: "
          f"{n - counts['src']:+,} fewer in src, nothing lost, {duplicates} duplicate(s)")
