"""Benchmark: RabbitMQ `peek -n 1000` on a deep vs a shallow queue, `queues` over 500 queues,
and selected purge / move against a bare pika consume+ack loop.

Runs against the RabbitMQ on 127.0.0.1:5672 (``--rabbit 4``: the tests' RabbitMQ 4.0 node on
5673) in a vhost of its own (created here, deleted at the end).  Targets: peek >= 5,000
messages/s decoded and returned, the 100,000-message queue within 1.5x of the 1,000-message
one; `queues` over 500 queues in one management API call; a selected purge and a move, 10%
matching, measured end to end (until every kept message is ready in the queue again, checked
at exit) against a bare pika loop that consumes and acks the same kind of queue in the same
run: >= 0.45x on a classic queue (100,000 messages, kept ones held), >= 0.3x on a quorum
queue (50,000, kept ones re-published).

    python benchmarks/bench_amqp.py [--deep 100000] [--shallow 1000] [--queues 500] [--repeat 5]
                                    [--ops 100000] [--quorum-ops 50000] [--only ops|peek]
                                    [--rabbit 3|4]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from services import RABBIT3, new_vhost  # noqa: E402

PEEK_N = 1000


def task_bodies(n: int) -> list[tuple[bytes, dict]]:
    """n different protocol-2 messages as Celery builds them (json)."""
    from celery import Celery
    from kombu.serialization import dumps

    app = Celery("bench", set_as_current=False)
    out = []
    for i in range(n):
        headers, _, body, _ = app.amqp.create_task_message(f"bench-{i:06d}", "tasks.add", (i, i), {"n": i})
        out.append((dumps(body, serializer="json")[2].encode(), headers))
    return out


def fill(url: str, queue: str, count: int, templates: list[tuple[bytes, dict]]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    for i in range(count):
        body, headers = templates[i % len(templates)]
        ch.basic_publish("", queue, body, pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={**headers, "id": f"{queue}-{i}"}))
    while ch.queue_declare(queue, passive=True).method.message_count < count:
        time.sleep(0.1)
    conn.close()


def peek_once(url: str, queue: str) -> float:
    """Seconds for a full `peek -n 1000` in process: connect, fetch, decode, nack, close."""
    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    start = time.perf_counter()
    broker = open_broker(parse_url(url))
    got = sum(1 for m in broker.peek(queue, PEEK_N) if m.error is None)
    broker.close()
    elapsed = time.perf_counter() - start
    assert got == PEEK_N, got
    return elapsed


def peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deep", type=int, default=100_000)
    parser.add_argument("--shallow", type=int, default=1_000)
    parser.add_argument("--queues", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--quorum-ops", type=int, default=50_000)
    parser.add_argument("--rabbit", choices=("3", "4"), default="3",
                        help="the machine's RabbitMQ 3.x (5672) or the tests' 4.0 node (5673)")
    parser.add_argument("--only", choices=("ops", "peek"))
    opts = parser.parse_args()

    node = RABBIT3
    if opts.rabbit == "4":
        from rabbit4 import RABBIT4 as node
    vhost = new_vhost("celerytool-bench", node=node)
    url = vhost.url()
    print(f"RabbitMQ {'.'.join(map(str, node.version()))} at {url.rsplit('@', 1)[-1]}")
    peek_ok = queues_ok = ops_ok = True
    try:
        if opts.only != "peek":
            ops_ok = bench_ops(url, opts.ops, opts.quorum_ops)
        if opts.only != "ops":
            peek_ok, queues_ok = bench_peek_queues(url, vhost, opts)
    finally:
        vhost.delete()
    sys.exit(0 if peek_ok and queues_ok and ops_ok else 1)


def bench_peek_queues(url: str, vhost, opts) -> tuple[bool, bool]:
    templates = task_bodies(1000)
    t = time.perf_counter()
    fill(url, "deep", opts.deep, templates)
    fill(url, "shallow", opts.shallow, templates)
    print(f"filled deep={opts.deep:,} shallow={opts.shallow:,} in {time.perf_counter() - t:.1f} s")

    peek_once(url, "shallow")  # warm-up: imports, first connection
    deep, shallow = [], []
    for _ in range(opts.repeat):  # interleaved, so load on the machine hits both alike
        deep.append(peek_once(url, "deep"))
        shallow.append(peek_once(url, "shallow"))
    d, s = statistics.median(deep), statistics.median(shallow)
    mem = peak_mb(lambda: peek_once(url, "deep"))
    print(f"peek -n {PEEK_N} on {opts.deep:,}: median {d * 1000:.1f} ms = {PEEK_N / d:,.0f} msg/s "
          f"(runs: {', '.join(f'{x * 1000:.0f}' for x in deep)} ms)")
    print(f"peek -n {PEEK_N} on {opts.shallow:,}: median {s * 1000:.1f} ms = {PEEK_N / s:,.0f} msg/s "
          f"(runs: {', '.join(f'{x * 1000:.0f}' for x in shallow)} ms)")
    peek_ok = min(PEEK_N / d, PEEK_N / s) >= 5000 and d / s <= 1.5
    print(f"ratio deep/shallow: {d / s:.2f}x (target <= 1.5x); rate target >= 5,000 msg/s: "
          f"{'met' if peek_ok else 'NOT met'}")
    print(f"peak Python memory of one peek on the deep queue: {mem:.1f} MB (tracemalloc)")
    print(f"(info) whole command `celerytool peek deep -n {PEEK_N} -o ndjson`, start-up included: "
          f"{cli_seconds(url, 'deep') * 1000:.0f} ms")

    vhost.api("DELETE", f"/queues/{vhost.quoted}/deep")
    vhost.api("DELETE", f"/queues/{vhost.quoted}/shallow")
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for i in range(opts.queues):
        ch.queue_declare(f"q{i:04d}", durable=True, arguments={"x-max-priority": 5} if i % 2 else None)
        for _ in range(i % 4):
            ch.basic_publish("", f"q{i:04d}", b"[]")
    conn.close()
    # wait until the management plugin has sampled every queue once (steady state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = vhost.api("GET", f"/queues/{vhost.quoted}?columns=name,messages_ready")
        if (len(rows) == opts.queues and all("messages_ready" in r for r in rows)
                and sum(r["messages_ready"] for r in rows) == sum(i % 4 for i in range(opts.queues))):
            break
        time.sleep(0.5)

    from celerytool.brokers import open_broker
    from celerytool.urls import parse_url

    def list_queues():
        broker = open_broker(parse_url(url))
        start = time.perf_counter()
        infos = broker.queues()
        elapsed = time.perf_counter() - start
        calls, amqp = broker.management.calls, "connection" in broker.__dict__
        broker.close()
        assert len(infos) == opts.queues, len(infos)
        assert sum(q.messages for q in infos) == sum(i % 4 for i in range(opts.queues))
        return elapsed, calls, amqp

    runs = [list_queues() for _ in range(opts.repeat)]
    qt = statistics.median(r[0] for r in runs)
    mem = peak_mb(list_queues)
    print(f"queues over {opts.queues} queues: median {qt * 1000:.1f} ms, "
          f"{runs[0][1]} management call(s), AMQP connection opened: {runs[0][2]}; "
          f"peak Python memory {mem:.1f} MB")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    queues_ok = runs[0][1] == 1 and not runs[0][2]
    return peek_ok, queues_ok


def cli_seconds(url: str, queue: str) -> float:
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "celerytool", "peek", queue, "-n", str(PEEK_N), "-b", url,
                    "-o", "ndjson"], stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start



# --- selected purge / move vs a bare pika consume+ack loop ----------------------------------

MATCH = "tasks.match"


def fill_mixed(url: str, queue: str, count: int, templates: list[tuple[bytes, dict]],
               arguments: dict | None = None) -> None:
    """``count`` messages, every tenth one of task MATCH, published without a flush per message."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_delete(queue)
    ch.queue_declare(queue, durable=True, arguments=arguments)
    for i in range(count):
        body, headers = templates[i % len(templates)]
        task = MATCH if i % 10 == 9 else headers["task"]
        ch._impl.basic_publish("", queue, body, pika.BasicProperties(
            content_type="application/json", content_encoding="utf-8", delivery_mode=2,
            headers={**headers, "task": task, "id": f"{queue}-{i}"}))
        if i % 1000 == 999:
            conn.process_data_events(time_limit=0)
    while ch.queue_declare(queue, passive=True).method.message_count < count:
        conn.process_data_events(time_limit=0.1)
    conn.close()


def bare_loop(url: str, queue: str, count: int) -> float:
    """Seconds for a plain pika consumer (prefetch 500, ack each message) to take ``count``."""
    import pika

    start = time.perf_counter()
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=500)
    got = 0

    def on_message(c, method, props, body) -> None:
        nonlocal got
        got += 1
        c.basic_ack(method.delivery_tag)

    ch.basic_consume(queue, on_message)
    while got < count:
        conn.process_data_events(time_limit=1)
    conn.close()
    return time.perf_counter() - start


def ready(url: str, queue: str) -> int:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def selected(url: str, action: str, queue: str, count: int, hold: bool | None) -> float:
    """Seconds for a selected purge / move (10% of ``count``) in process, connect to close, the
    queue whole when it returns (checked by a passive declare of our own right after)."""
    from celerytool.brokers import open_broker
    from celerytool.brokers.amqp import walk
    from celerytool.brokers.base import Control
    from celerytool.selection import Selection
    from celerytool.urls import parse_url

    real_wait = walk.wait_until_back

    def timed_wait(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real_wait(*args, **kwargs)
        finally:
            WAITED.append(time.perf_counter() - t)

    walk.wait_until_back = timed_wait
    WAITED.clear()
    start = time.perf_counter()
    broker = open_broker(parse_url(url))
    ops = broker.ops()
    ops.hold_kept = hold
    sel = Selection.build(tasks=[MATCH])
    if action == "purge":
        result = ops.purge(queue, sel, Control())
    else:
        result = ops.move(queue, "dst", sel, Control())
    broker.close()
    elapsed = time.perf_counter() - start
    kept = count - count // 10
    assert (result.examined, result.done, result.kept) == (count, count // 10, kept), result
    walk.wait_until_back = real_wait
    at_exit = ready(url, queue)
    assert at_exit == kept, f"{action}: {at_exit:,} of {kept:,} kept messages ready at exit"
    return elapsed


WAITED: list[float] = []  # seconds the last selected() spent waiting for the queue to be whole


def cli_peak(url: str, args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one `celerytool` command, read inside the process (VmHWM)."""
    import os
    import subprocess

    wrapper = ("import atexit, runpy, sys\n"
               "def peak():\n"
               "    for line in open('/proc/self/status'):\n"
               "        if line.startswith('VmHWM:'):\n"
               "            sys.stderr.write('PEAK_KB ' + line.split()[1] + '\\n')\n"
               "atexit.register(peak)\n"
               "sys.argv = ['celerytool'] + sys.argv[1:]\n"
               "runpy.run_module('celerytool', run_name='__main__', alter_sys=True)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", wrapper, *args, "-b", url, "-y", "-o", "json"],
                       capture_output=True, text=True, env=env, check=True)
    elapsed = time.perf_counter() - start
    kb = [int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("PEAK_KB")]
    return elapsed, kb[0] / 1024


def bench_ops(url: str, n: int, nq: int) -> bool:
    """Classic queue (kept messages held) over ``n`` messages, quorum queue (kept re-published) over
    ``nq``, each against a bare consume+ack loop over the same kind of queue in the same run."""
    import pika

    templates = task_bodies(1000)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    conn.channel().queue_declare("dst", durable=True)
    conn.close()
    rates: dict[str, float] = {}

    def run(label: str, count: int, arguments: dict | None, fn, *args) -> None:
        fill_mixed(url, "work", count, templates, arguments)
        WAITED.clear()
        seconds = fn(url, *args)
        rates[label] = count / seconds
        waited = f"  (of which {sum(WAITED):.2f} s waiting for the queue to be whole)" if WAITED else ""
        print(f"  {label:<40} {seconds:6.2f} s  {count / seconds:9,.0f} msg/s{waited}")

    quorum = {"x-queue-type": "quorum"}
    print("selected purge / move, 10% matching, in process from connect to close, the queue whole at "
          "exit (every kept message ready again: checked):")
    if n:
        run("classic: bare pika consume+ack (1)", n, None, bare_loop, "work", n)
        run("classic: purge --task (kept held)", n, None, selected, "purge", "work", n, None)
        run("classic: move --task (kept held)", n, None, selected, "move", "work", n, None)
        run("classic: bare pika consume+ack (2)", n, None, bare_loop, "work", n)
    if nq:
        run("quorum: bare pika consume+ack (1)", nq, quorum, bare_loop, "work", nq)
        run("quorum: purge --task (kept re-published)", nq, quorum, selected, "purge", "work", nq, None)
        run("quorum: move --task (kept re-published)", nq, quorum, selected, "move", "work", nq, None)
        run("quorum: bare pika consume+ack (2)", nq, quorum, bare_loop, "work", nq)
    if not n:
        return all(rates[k] / max(rates["quorum: bare pika consume+ack (1)"],
                                  rates["quorum: bare pika consume+ack (2)"]) >= 0.3
                   for k in rates if "bare" not in k)
    fill_mixed(url, "work", n, templates)
    cli_seconds_, peak = cli_peak(url, ["purge", "work", "--task", MATCH])
    print(f"  {'whole command `purge --task` (classic)':<40} {cli_seconds_:6.2f} s  {n / cli_seconds_:9,.0f} "
          f"msg/s, peak RSS {peak:.0f} MB")
    fill_mixed(url, "work", n, templates)
    cli_seconds_, peak_move = cli_peak(url, ["move", "work", "dst", "--task", MATCH])
    print(f"  {'whole command `move --task` (classic)':<40} {cli_seconds_:6.2f} s  "
          f"{n / cli_seconds_:9,.0f} msg/s, peak RSS {peak_move:.0f} MB")
    ok = True
    for kind, target in (("classic", 0.45), ("quorum", 0.3)) if nq else (("classic", 0.45),):
        bare = max(rates[f"{kind}: bare pika consume+ack (1)"], rates[f"{kind}: bare pika consume+ack (2)"])
        for label in [k for k in rates if k.startswith(kind) and "bare" not in k]:
            ratio = rates[label] / bare
            ok = ok and ratio >= target
            print(f"ratio {label}: {rates[label]:,.0f} / {bare:,.0f} = {ratio:.2f}x (target >= {target}x)")
    print(f"peak RSS of the commands: purge {peak:.0f} MB, move {peak_move:.0f} MB")
    conn = pika.BlockingConnection(pika.URLParameters(url))
    for queue in ("work", "dst"):  # the `queues` benchmark counts every queue of the vhost
        conn.channel().queue_delete(queue)
    conn.close()
    return ok


if __name__ == "__main__":
    main()
