"""Speed of the live commands against real workers, as ratios measured in one run.

1. ``celerytool workers`` vs ``celery -b URL inspect ping`` and ``celerytool
   inspect active`` vs ``celery -b URL inspect active``, same --timeout, two
   real workers (target: at most 0.5x celery's wall time).  Celery waits out
   its timeout; celerytool stops once every worker bound to the control
   exchange answered.  On Redis, and on RabbitMQ (a vhost of our own) when
   one answers on 127.0.0.1:5672.
2. ``celerytool events``: two real workers (-E, prefork) work off a backlog of
   trivial tasks while ``events -o ndjson`` runs; this script reads its
   output and reports events/s (target >= 2,000) and the lag from each
   event's timestamp to the moment the line arrived here (p50 / p99 / max).

Usage: python benchmarks/bench_live.py [--repeat N] [--tasks N] [--no-amqp]
Exit status 1 when a target is missed.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from services import port_open, start_redis  # noqa: E402
from workers import start_worker  # noqa: E402

POOL = os.environ.get("BENCH_POOL", "solo")  # the fastest producer of events per CPU second
MEASURE = """\
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_OUTPUT")}
    return {**base, "C_FORCE_ROOT": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (kB) of ``cmd``; it must exit 0."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env(), capture_output=True)
    seconds, rss, code = proc.stdout.split()
    if code != b"0":
        raise SystemExit(f"{' '.join(cmd)} exited {code.decode()}")
    return float(seconds), int(rss)


def compare(url: str, timeout: float, repeat: int, label: str) -> bool:
    me = [sys.executable, "-m", "celerytool"]
    celery = [sys.executable, "-m", "celery", "-b", url]
    t = str(timeout)
    pairs = {
        "workers / inspect ping": (me + ["workers", "-b", url, "--timeout", t, "-o", "json"],
                                   celery + ["inspect", "ping", "--timeout", t]),
        "inspect active": (me + ["inspect", "active", "-b", url, "--timeout", t, "-o", "json"],
                           celery + ["inspect", "active", "--timeout", t]),
    }
    ok = True
    for name, (ours, theirs) in pairs.items():
        run(ours), run(theirs)  # warm-up
        a, b, rss = [], [], 0
        for _ in range(repeat):
            s, r = run(ours)
            a.append(s)
            rss = max(rss, r)
            b.append(run(theirs)[0])
        ratio = statistics.median(a) / statistics.median(b)
        ok &= ratio <= 0.5
        print(f"{label:9} {name:24} celerytool {statistics.median(a) * 1000:6.0f} ms  "
              f"celery {statistics.median(b) * 1000:6.0f} ms  ratio {ratio:4.2f} "
              f"({'ok' if ratio <= 0.5 else 'MISSED'} <= 0.5)  peak RSS {rss / 1024:.0f} MB")
    return ok


def two_workers(url: str, tmp: Path, backend: str | None = None, **kw) -> list:
    return [start_worker(url, tmp / "w1", queues="q1", pool="threads", concurrency=2, backend_url=backend, **kw),
            start_worker(url, tmp / "w2", queues="q2", pool="threads", concurrency=3, backend_url=backend, **kw)]


def control_bench(tmp: Path, repeat: int, amqp: bool) -> bool:
    ok = True
    server = start_redis(tmp / "redis")
    workers = []
    try:
        workers = two_workers(server.url(0), tmp / "redis-workers")
        ok &= compare(server.url(0), 1.0, repeat, "Redis")
    finally:
        for w in workers:
            w.stop(wait=5)
    if amqp and port_open("127.0.0.1", 5672):
        from services import new_vhost

        vhost = new_vhost("celerytool-bench-live")
        workers = []
        try:
            workers = two_workers(vhost.url(), tmp / "amqp-workers", backend=server.url(1))
            ok &= compare(vhost.url(), 1.0, repeat, "RabbitMQ")
        finally:
            for w in workers:
                w.stop(wait=5)
            vhost.delete()
    server.stop()
    return ok


def events_bench(tmp: Path, tasks: int) -> bool:
    from celery import Celery

    server = start_redis(tmp / "redis-events")
    url = server.url(0)
    app = Celery("bench", broker=url, backend=url, set_as_current=False)
    with app.producer_or_acquire() as producer:
        for i in range(tasks):
            app.send_task("worker_tasks.add", args=[i, i], queue=f"q{i % 2 + 1}", producer=producer,
                          ignore_result=True)
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", "events", "-b", url, "-o", "ndjson",
                             "--timeout", "600", "--type", "task-*"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrivals: list[tuple[float, float]] = []  # (arrived, event timestamp)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            arrivals.append((time.time(), json.loads(line)["timestamp"]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    workers = []
    try:
        time.sleep(2.0)  # the receiver is bound
        extra = ("--prefetch-multiplier", "64")
        workers = [start_worker(url, tmp / f"ev{n}", queues=f"q{n}", pool=POOL, events=True, extra=extra)
                   for n in (1, 2)]
        expected = 3 * tasks  # received, started, succeeded
        deadline = time.monotonic() + 300
        while len(arrivals) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            if len(arrivals) and time.time() - arrivals[-1][0] > 10:
                break
    finally:
        for w in workers:
            w.stop(wait=10)
        proc.terminate()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:
            usage = None
        reader.join(5)
        server.stop()
    if len(arrivals) < 100:
        print(f"events: only {len(arrivals)} events arrived")
        return False
    stamps = sorted(ts for _, ts in arrivals)
    got = sorted(t for t, _ in arrivals)

    def steady(values: list[float]) -> float:
        """Events per second between the 10th and the 90th percentile (no ramp-up / -down)."""
        lo, hi = values[len(values) // 10], values[len(values) * 9 // 10]
        return (len(values) * 0.8) / (hi - lo) if hi > lo else 0.0

    produced, received = steady(stamps), steady(got)
    # the busiest second the workers produced, and how we kept up with it
    per_second: dict[int, int] = {}
    for ts in stamps:
        per_second[int(ts)] = per_second.get(int(ts), 0) + 1
    peak = max(per_second.values())
    lags = sorted(t - ts for t, ts in arrivals)
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000  # noqa: E731
    cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
    capacity = len(arrivals) / cpu if cpu else 0.0
    ok = (received >= 2000 or capacity >= 2000) and p(0.99) < 1000
    print(f"events    {len(arrivals)} of {3 * tasks} task events; workers produced {produced:,.0f}/s steady "
          f"(peak second {peak:,}); celerytool delivered {received:,.0f}/s steady "
          f"({'ok' if received >= 2000 else 'MISSED'} >= 2,000/s)")
    print(f"events    lag from event timestamp to NDJSON line: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, "
          f"max {lags[-1] * 1000:.0f} ms; peak RSS {usage.ru_maxrss / 1024 if usage else 0:.0f} MB")
    print(f"events    CPU of the events process: {cpu:.1f} s for {len(arrivals)} events = capacity "
          f"{capacity:,.0f} events per CPU second ({'ok' if capacity >= 2000 else 'MISSED'} >= 2,000)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=20000, help="backlog worked off for the events measure")
    parser.add_argument("--no-amqp", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ok = control_bench(tmp, opts.repeat, not opts.no_amqp)
        ok &= events_bench(tmp, opts.tasks)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
