"""Benchmark: `celerytool send --from` of 100,000 tasks vs a Python loop of Celery's send_task.

Both publish to the same private redis-server in the same run; the figure
that matters is the ratio (target: >= 25x) and the peak memory of the
celerytool process (target: < 150 MB).

    python benchmarks/bench_send.py [--tasks 100000] [--anchor-seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from services import start_redis  # noqa: E402


def anchor_rate(url: str, seconds: float) -> float:
    """Tasks per second of `app.send_task` in a loop (one warm-up call first)."""
    from celery import Celery

    app = Celery("bench", broker=url, backend=url, set_as_current=False)
    app.send_task("tasks.add", (0, 0))
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(100):
            app.send_task("tasks.add", (i, i))
        n += 100
    rate = n / (time.perf_counter() - start)
    app.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--anchor-seconds", type=float, default=5.0)
    opts = parser.parse_args()
    import redis

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            url = server.url(0)
            client = redis.Redis(port=server.port)
            anchor = anchor_rate(url, opts.anchor_seconds)
            client.flushall()

            source = Path(tmp) / "tasks.ndjson"
            with open(source, "w") as fh:
                for i in range(opts.tasks):
                    fh.write(json.dumps({"task": "tasks.add", "args": [i, i]}) + "\n")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "celerytool", "send", "--from", str(source), "-b", url],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            wall = time.perf_counter() - start
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if done.returncode != 0:
                sys.exit(f"celerytool failed: {done.stderr.decode()}")
            stored = client.llen("celery")
            assert stored == opts.tasks, f"{stored} messages stored, expected {opts.tasks}"
            client.close()
        finally:
            server.stop()
    rate = opts.tasks / wall
    ratio = rate / anchor
    print(f"app.send_task loop:           {anchor:10,.0f} tasks/s")
    print(f"celerytool send --from:       {rate:10,.0f} tasks/s  ({opts.tasks:,} tasks in {wall:.2f} s, start-up included)")
    print(f"ratio:                        {ratio:10.1f}x  (target >= 25x: {'ok' if ratio >= 25 else 'MISSED'})")
    print(f"peak memory (celerytool):     {peak_mb:10.1f} MB (target < 150 MB: {'ok' if peak_mb < 150 else 'MISSED'})")


if __name__ == "__main__":
    main()
