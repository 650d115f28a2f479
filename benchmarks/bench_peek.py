"""Speed of ``celerytool peek`` and start-up, as ratios measured in one run.

Starts a private redis-server on a free port (nothing else is touched), fills
it with real Celery messages (a few sent with ``app.send_task``, then copied
with pipelined LPUSH, each copy with its own task id), and times the
``celerytool`` CLI as a subprocess against:

1. itself: ``peek celery -n 10`` on 1,000,000 messages vs on 10 (<= 1.5x);
2. a bare Python loop doing LRANGE + json + base64 + json on the same data:
   ``peek celery --all -o ndjson`` must run at >= 70% of its rate, with a
   peak RSS under 150 MB;
3. celery's own CLI: ``--help`` (<= 30%) and ``queues`` vs
   ``celery -A <tiny app> list bindings`` on the same Redis (<= 50%).

Usage: python benchmarks/bench_peek.py [--depth N] [--repeat N]
Exit status 1 when a target is missed.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from services import RedisServer, start_redis  # noqa: E402

SMALL_DB, DEEP_DB = 0, 1
QUEUE = "celery"
CHUNK = 1000  # LRANGE chunk of the bare loop, the same as celerytool's

BARE_LOOP = f"""\
import base64, json, sys
import redis

client = redis.Redis(port=int(sys.argv[1]), db=int(sys.argv[2]))
key = sys.argv[3]
length = client.llen(key)
count = offset = 0
while offset < length:
    chunk = client.lrange(key, -(offset + {CHUNK}), -(offset + 1))
    if not chunk:
        break
    chunk.reverse()
    for raw in chunk:
        envelope = json.loads(raw)
        payload = json.loads(base64.b64decode(envelope["body"]))
        count += 1
    offset += len(chunk)
assert count == length, (count, length)
"""

TINY_APP = """\
from celery import Celery

app = Celery("benchapp")
"""


# Runs one command and prints its wall time and peak RSS.  A small process of
# its own, because a child's ru_maxrss starts from its parent's peak RSS (the
# kernel carries the high-water mark across fork and exec), and this script's
# is large after filling Redis.
MEASURE = """\
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


@dataclass
class Run:
    seconds: float
    max_rss_kb: int


def run(cmd: Sequence[str], env: dict[str, str]) -> Run:
    """Run ``cmd`` (stdout to /dev/null): its wall time and its own peak RSS."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True)
    try:
        seconds, rss, code = proc.stdout.split()
    except ValueError:
        code = b"?"
    if proc.returncode != 0 or code != b"0":
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-2000:]}")
    return Run(float(seconds), int(rss))


def medians(commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> dict[str, float]:
    """Median wall time of each command, runs interleaved so load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd, env in commands.values():  # warm-up: page cache, .pyc files
        run(cmd, env)
    for _ in range(repeat):
        for name, (cmd, env) in commands.items():
            times[name].append(run(cmd, env).seconds)
    return {name: statistics.median(t) for name, t in times.items()}


# -- data ----------------------------------------------------------------------------------

def send_real(url: str, count: int) -> None:
    """``count`` task messages sent by Celery itself: json, varied args, some priorities."""
    from celery import Celery

    app = Celery("bench", broker=url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = False
    try:
        for i in range(count):
            app.send_task(
                "bench.tasks.add" if i % 2 else "bench.tasks.report",
                args=(i, i * 2, f"item-{i}"),
                kwargs={"user": "ünïcode", "n": i, "tags": ["a", "b"]},
                queue=QUEUE,
                serializer="json",
            )
    finally:
        app.close()


def fill(server: RedisServer, depth: int, seeds: int = 5) -> int:
    """Make the deep queue ``depth`` messages long: real ones copied with fresh ids."""
    import json

    import redis

    send_real(server.url(DEEP_DB), seeds)
    client = redis.Redis(port=server.port, db=DEEP_DB)
    templates = []
    for raw in client.lrange(QUEUE, 0, -1):
        env = json.loads(raw)
        task_id = env["headers"]["id"].encode()
        tag = env["properties"]["delivery_tag"].encode()
        templates.append((raw, task_id, tag))
    client.delete(QUEUE)
    pipe = client.pipeline(transaction=False)
    batch: list[bytes] = []
    for i in range(depth):
        raw, task_id, tag = templates[i % len(templates)]
        suffix = b"%012x" % i
        batch.append(raw.replace(task_id, task_id[:-12] + suffix).replace(tag, tag[:-12] + suffix))
        if len(batch) == 1000:
            pipe.lpush(QUEUE, *batch)
            batch = []
            if len(pipe) == 50:
                pipe.execute()
    if batch:
        pipe.lpush(QUEUE, *batch)
    pipe.execute()
    size = client.llen(QUEUE)
    used = client.info("memory")["used_memory_human"]
    client.close()
    print(f"  deep queue: {size:,} messages in db {DEEP_DB} ({used} in Redis), "
          f"envelopes of {len(templates[0][0])} bytes", file=sys.stderr)
    return size


# -- report --------------------------------------------------------------------------------

class Report:
    def __init__(self) -> None:
        self.missed: list[str] = []

    def line(self, label: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"{label:<58} {value:>16}  {target:<10} {verdict}", flush=True)
        if ok is False:
            self.missed.append(label)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=1_000_000, help="messages in the deep queue")
    parser.add_argument("--repeat", type=int, default=7, help="runs per timed command (median)")
    parser.add_argument("--all-repeat", type=int, default=3, help="runs of the --all stream (median)")
    opts = parser.parse_args()

    bindir = Path(sys.executable).parent
    tool_exe = shutil.which("celerytool", path=str(bindir))
    tool = [tool_exe] if tool_exe else [sys.executable, "-m", "celerytool"]
    celery_exe = shutil.which("celery", path=str(bindir))
    celery = [celery_exe] if celery_exe else [sys.executable, "-m", "celery"]

    with tempfile.TemporaryDirectory(prefix="celerytool-bench-") as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            return measure(server, Path(tmp), tool, celery, opts)
        finally:
            server.stop()


def measure(server: RedisServer, tmp: Path, tool: list[str], celery: list[str],
            opts: argparse.Namespace) -> int:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("CELERY_", "CELERYTOOL_", "PYTHON"))}
    tool_env = {**base, "PYTHONPATH": str(ROOT)}
    (tmp / "benchapp.py").write_text(TINY_APP)
    celery_env = {**base, "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)])}
    small, deep = server.url(SMALL_DB), server.url(DEEP_DB)

    print(f"celerytool: {' '.join(tool)}  (code from {ROOT})", file=sys.stderr)
    print(f"redis-server on port {server.port}; filling...", file=sys.stderr)
    send_real(small, 10)
    depth = fill(server, opts.depth)
    report = Report()
    print(f"{'measure':<58} {'value':>16}  {'target':<10}", flush=True)

    # 1. peek -n 10: the cost must follow N, not the depth
    t = medians({
        "shallow": ([*tool, "peek", QUEUE, "-n", "10", "-b", small], tool_env),
        "deep": ([*tool, "peek", QUEUE, "-n", "10", "-b", deep], tool_env),
        "shallow-json": ([*tool, "peek", QUEUE, "-n", "10", "-o", "json", "-b", small], tool_env),
        "deep-json": ([*tool, "peek", QUEUE, "-n", "10", "-o", "json", "-b", deep], tool_env),
    }, opts.repeat)
    report.line("peek -n 10, queue of 10 (s, median)", f"{t['shallow']:.3f}")
    report.line(f"peek -n 10, queue of {depth:,} (s, median)", f"{t['deep']:.3f}")
    ratio = t["deep"] / t["shallow"]
    report.line("  ratio deep / shallow", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5)
    ratio = t["deep-json"] / t["shallow-json"]
    report.line("  same with -o json: ratio deep / shallow", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5)

    # 2. peek --all -o ndjson vs a bare decode loop, on the same data
    bare_cmd = [sys.executable, "-c", BARE_LOOP, str(server.port), str(DEEP_DB), QUEUE]
    all_cmd = [*tool, "peek", QUEUE, "--all", "-o", "ndjson", "-b", deep]
    bare_runs, all_runs = [], []
    for _ in range(opts.all_repeat):
        bare_runs.append(run(bare_cmd, base))
        all_runs.append(run(all_cmd, tool_env))
    bare_s = statistics.median(r.seconds for r in bare_runs)
    all_s = statistics.median(r.seconds for r in all_runs)
    peak_mb = max(r.max_rss_kb for r in all_runs) / 1024
    report.line("bare loop LRANGE+json+base64+json (msg/s, median)", f"{depth / bare_s:,.0f}")
    report.line("peek --all -o ndjson > /dev/null (msg/s, median)", f"{depth / all_s:,.0f}")
    share = bare_s / all_s
    report.line("  rate vs bare loop", f"{share:.0%}", ">= 70%", share >= 0.70)
    report.line("  peak RSS of celerytool (MB, max of runs)", f"{peak_mb:.1f}", "< 150 MB", peak_mb < 150)

    # 3. start-up, against celery's own CLI in the same run
    t = medians({
        "tool-help": ([*tool, "--help"], tool_env),
        "celery-help": ([*celery, "--help"], celery_env),
        "tool-queues": ([*tool, "queues", "-b", small], tool_env),
        "celery-bindings": ([*celery, "-A", "benchapp", "-b", small, "list", "bindings"], celery_env),
    }, opts.repeat)
    report.line("celerytool --help (s, median)", f"{t['tool-help']:.3f}")
    report.line("celery --help (s, median)", f"{t['celery-help']:.3f}")
    share = t["tool-help"] / t["celery-help"]
    report.line("  celerytool --help / celery --help", f"{share:.0%}", "<= 30%", share <= 0.30)
    report.line("celerytool queues (s, median)", f"{t['tool-queues']:.3f}")
    report.line("celery -A benchapp list bindings (s, median)", f"{t['celery-bindings']:.3f}")
    share = t["tool-queues"] / t["celery-bindings"]
    report.line("  celerytool queues / celery list bindings", f"{share:.0%}", "<= 50%", share <= 0.50)

    if report.missed:
        print(f"missed: {', '.join(report.missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
