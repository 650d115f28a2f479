"""Benchmark purge / move / export on 1,000,000 real Celery messages in a private Redis.

Run:  PYTHONPATH=. python benchmarks/bench_ops.py [N]
Each command runs as its own process (as a user would run it); its wall
time and peak RSS (wait4) are measured.  Targets (issue 5): filtered purge
and move >= 100,000 messages examined/s with peak memory < 150 MB; export
>= 70% of the `peek --all` rate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from msgfactory import clones, push, real_envelope  # noqa: E402

from conftest import make_app  # noqa: E402
from services import start_redis  # noqa: E402


def fill(client, app, n: int, bad_every: int = 10) -> None:
    client.flushdb()
    good = real_envelope(app, client, "tasks.good", (1, 2), {"user": "ann", "n": 1})
    bad = real_envelope(app, client, "tasks.bad", (3, 4), {"user": "bob", "n": 2})
    step = 100_000
    for start in range(0, n, step):
        count = min(step, n - start)
        g = clones(good, count - count // bad_every)
        b = clones(bad, count // bad_every)
        mixed, bi = [], 0
        for i, (_, raw) in enumerate(g):
            mixed.append(raw)
            if i % (bad_every - 1) == bad_every - 2 and bi < len(b):
                mixed.append(b[bi][1])
                bi += 1
        mixed += [raw for _, raw in b[bi:]]
        push(client, "celery", mixed, chunk=5000)


# Peak RSS is read inside the process (VmHWM, reset by exec), because a
# child's ru_maxrss also counts the pages of the forking parent.
WRAPPER = """
import atexit, runpy, sys
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            sys.stderr.write('\\nPEAK_KB ' + line.split()[1] + '\\n')
atexit.register(peak)
sys.argv = ['celerytool'] + sys.argv[1:]
runpy.run_module('celerytool', run_name='__main__', alter_sys=True)
"""


def timed(args: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one celerytool process; exit codes other than ``ok_codes`` stop."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    err = proc.stderr.decode()
    if proc.returncode not in ok_codes:
        raise SystemExit(f"celerytool {' '.join(args)} failed: {err}")
    return seconds, int(err.rsplit("PEAK_KB ", 1)[1].split()[0]) / 1024


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            run(server.url(0), n, Path(tmp))
        finally:
            server.stop()


def run(url: str, n: int, tmp: Path) -> None:
    import redis

    client = redis.Redis.from_url(url)
    app = make_app(url)
    b = ["-b", url]
    rows = []

    def report(name: str, seconds: float, mb: float, count: int, target: str) -> float:
        rate = count / seconds
        rows.append((name, count, seconds, rate, mb, target))
        print(f"{name:<44} {count:>9,} msgs {seconds:7.2f} s {rate:>10,.0f}/s  peak {mb:6.1f} MB  {target}",
              flush=True)
        return rate

    t0 = time.perf_counter()
    fill(client, app, n)
    print(f"filled {client.llen('celery'):,} messages in {time.perf_counter() - t0:.1f} s "
          f"({client.memory_usage('celery') / 2**20:.0f} MB in Redis)", flush=True)

    s, mb = timed(["peek", "celery", "--all", "-o", "ndjson", *b])
    peek_rate = report("peek --all -o ndjson", s, mb, n, "(baseline)")
    s, mb = timed(["export", "celery", "--file", str(tmp / "all.ndjson"), *b])
    export_rate = report("export --file FILE", s, mb, n, ">= 70% of peek")
    (tmp / "all.ndjson").unlink()

    s, mb = timed(["purge", "celery", "--task", "tasks.bad", "-y", *b])
    report("purge --task (10% match)", s, mb, n, ">= 100,000/s, < 150 MB")
    assert client.llen("celery") == n - n // 10, client.llen("celery")

    fill(client, app, n)
    s, mb = timed(["move", "celery", "dst", "--task", "tasks.bad", "-y", *b])
    report("move --task (10% match)", s, mb, n, ">= 100,000/s, < 150 MB")
    assert client.llen("dst") == n // 10

    fill(client, app, n)
    s, mb = timed(["purge", "celery", "--where", "kwargs.user == 'bob'", "-y", *b])
    report("purge --where kwargs.user (decodes bodies)", s, mb, n, "(for reference)")
    assert client.llen("celery") == n - n // 10

    print()
    print(f"export / peek --all rate ratio: {export_rate / peek_rate:.2f} (target >= 0.70)")
    app.close()
    client.close()


if __name__ == "__main__":
    main()
