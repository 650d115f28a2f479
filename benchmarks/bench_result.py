"""Benchmark: `celerytool result ID` vs `celery -b URL --result-backend URL result ID`.

Both read the same finished task from the same private redis-server in one
run; each command is run several times and the median wall time compared
(target: celerytool in at most 50% of celery's time).

    python benchmarks/bench_result.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from services import start_redis  # noqa: E402


def wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{cmd[:4]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    from celery import Celery

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            url = server.url(0)
            app = Celery("bench", broker=url, backend=url, set_as_current=False)
            app.backend.store_result("bench-task", {"total": 42, "items": list(range(20))}, "SUCCESS")
            app.close()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            ours = wall([sys.executable, "-m", "celerytool", "result", "bench-task", "-b", url], env, opts.runs)
            theirs = wall([sys.executable, "-m", "celery", "-b", url, "--result-backend", url, "result",
                           "bench-task"], env, opts.runs)
        finally:
            server.stop()
    share = ours / theirs
    print(f"celery result:      {theirs * 1000:8.0f} ms (median of {opts.runs})")
    print(f"celerytool result:  {ours * 1000:8.0f} ms (median of {opts.runs})")
    print(f"share:              {share:8.0%}  (target <= 50%: {'ok' if share <= 0.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
