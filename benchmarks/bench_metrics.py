"""metrics: a scrape of many queues, and --serve over a long event stream, measured in one run.

1. Scrape: a private Redis with ``--queues`` queues (default 1,000, each bound as Celery binds
   it) holding ``--messages`` messages in all (default 1,000,000: copies, with pipelined LPUSH,
   of one message Celery's ``send_task`` built), spread over the 0/3/6/9 priority lists.
   ``celerytool metrics --serve`` is scraped ``--repeat`` times; the median scrape wall time
   (target < 0.5 s) and its ratio to a bare pipelined LLEN of the same keys with redis-py.
2. Events: ``metrics --serve`` reads ``--events`` task events (default 1,000,000; 100 task
   names) published through Celery's own EventDispatcher (PUBLISH pipelined) as fast as it
   keeps up; events/s (target >= 5,000), the server's RSS at half and at the end, and its
   peak RSS (target < 150 MB, no growth from the half to the end).

Usage: python benchmarks/bench_metrics.py [--queues N] [--messages N] [--events N] [--repeat N]
Exit status 1 when a target is missed.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from metrics_helpers import EventGenerator, serve, total, value  # noqa: E402
from services import start_redis, wait_for  # noqa: E402

SEP = "\x06\x16"


def fill(url: str, queues: int, messages: int) -> list[str]:
    import redis
    from celery import Celery

    app = Celery("bench", broker=url, set_as_current=False)
    app.send_task("bench.task", queue="seed")
    client = redis.Redis.from_url(url)
    raw = client.rpop("seed")
    client.delete("_kombu.binding.seed")
    names = [f"q{i:04d}" for i in range(queues)]
    pipe = client.pipeline(transaction=False)
    for name in names:  # as kombu binds a queue to the default direct exchange
        pipe.sadd(f"_kombu.binding.{name}", f"{name}{SEP}{SEP}{name}")
    pipe.execute()
    per = messages // queues
    for name in names:
        for j in range(per):
            bucket = (0, 3, 6, 9)[j % 4]
            key = name if bucket == 0 else f"{name}{SEP}{bucket}"
            pipe.lpush(key, raw)
            if len(pipe) >= 5000:
                pipe.execute()
    pipe.execute()
    app.close()
    client.close()
    return names


def bench_scrape(url: str, tmp: Path, names: list[str], messages: int, repeat: int) -> bool:
    import redis

    served = serve(url, tmp, "-t", "30m", "--no-scan")
    try:
        wait_for(lambda: served.get("/health")[0] == 200, timeout=60)
        served.scrape()  # warm
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            s = served.scrape()
            times.append(time.perf_counter() - t0)
        got = total(s, "celery_queue_length")
        assert got == messages // len(names) * len(names), got
        assert value(s, "celery_queue_length_by_priority", queue_name=names[0], priority="9") > 0
        client = redis.Redis.from_url(url)
        bare = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for n in names:
                for b in (0, 3, 6, 9):
                    pipe.llen(n if b == 0 else f"{n}{SEP}{b}")
            pipe.execute()
            bare.append(time.perf_counter() - t0)
        client.close()
    finally:
        served.stop()
    med, base = statistics.median(times), statistics.median(bare)
    ok = med < 0.5
    print(f"scrape: {len(names)} queues, {int(got):,} messages: median {med:.3f} s over {repeat} "
          f"(target < 0.5 s: {'met' if ok else 'MISSED'}); bare pipelined LLEN {base:.3f} s, "
          f"ratio {med / base:.1f}x")
    return ok


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its own, not its children's)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_events(tmp: Path, events: int) -> bool:
    server = start_redis(tmp / "events-redis")
    served = serve(server.url(0), tmp, "-t", "2h")
    gen = EventGenerator(server.url(0))
    try:
        def read() -> float:
            s = served.scrape()
            return sum(total(s, "celerytool_events_read_total", type=t)
                       for t in ("task-received", "task-started", "task-succeeded"))

        def primed() -> bool:
            gen.heartbeat()
            return total(served.scrape(), "celerytool_events_read_total", type="worker-heartbeat") > 0

        wait_for(primed, timeout=60, every=0.5)
        cpu0 = cpu_seconds(served.proc.pid)
        tasks = events // 3
        half_rss = 0
        t0 = time.perf_counter()
        for i in range(tasks):
            gen.task(i)
            if i % 3000 == 2999:  # stay within Redis' pub/sub buffer: let the server catch up
                gen.flush()
                wait_for(lambda n=3 * (i + 1): read() >= n - 6000, timeout=300, every=0.05)
            if i == tasks // 2:
                gen.flush()
                wait_for(lambda n=3 * (i + 1): read() >= n, timeout=300, every=0.05)
                half_rss = served.rss()[0]
        gen.flush()
        wait_for(lambda: read() >= 3 * tasks, timeout=600, every=0.05)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(served.proc.pid) - cpu0
        end_rss, peak = served.rss()
        s = served.scrape()
        assert total(s, "celery_task_succeeded_total") == tasks
    finally:
        gen.close()
        served.stop()
        server.stop()
    rate = 3 * tasks / elapsed
    mb = 2**20
    ok = rate >= 5000 and peak < 150 * mb and end_rss - half_rss < 5 * mb
    print(f"events: {3 * tasks:,} task events (100 names) in {elapsed:.1f} s = {rate:,.0f} events/s "
          f"(target >= 5,000), {3 * tasks / cpu:,.0f} per CPU second of the server; server RSS {half_rss / mb:.1f} MB at half, {end_rss / mb:.1f} MB at "
          f"the end, peak {peak / mb:.1f} MB (target < 150 MB, flat): {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queues", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--skip-scrape", action="store_true")
    ap.add_argument("--skip-events", action="store_true")
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as d:
        tmp = Path(d)
        if not args.skip_scrape:
            server = start_redis(tmp / "redis")
            try:
                t0 = time.perf_counter()
                names = fill(server.url(0), args.queues, args.messages)
                print(f"filled {args.queues} queues with {args.messages:,} messages in "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
                ok &= bench_scrape(server.url(0), tmp, names, args.messages, args.repeat)
            finally:
                server.stop()
        if not args.skip_events:
            ok &= bench_events(tmp, args.events)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
