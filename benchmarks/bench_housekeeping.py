"""Benchmark doctor, forget (issue 12) and summary (issue 11) on a private Redis.

Run:  .venv/bin/python benchmarks/bench_housekeeping.py [N]     (default 1,000,000)

- doctor over N Celery keys (task results with and without TTL, group results, chord
  counters, leaked reply lists, queues): wall time vs `redis-cli --memkeys` on the same
  database (target <= 1.5x), peak RSS < 150 MB.
- forget --status SUCCESS --older-than 1h over N results, half matching: keys examined/s
  (target >= 50,000).
- summary QUEUE (by task) over N messages: messages/s (target >= 100,000), peak RSS < 150 MB.
Each command runs once, as its own process; peak RSS is VmHWM read inside it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ops import timed  # noqa: E402
from msgfactory import clones, push, real_envelope  # noqa: E402

from conftest import make_app  # noqa: E402
from services import start_redis  # noqa: E402

CHUNK = 10_000


def meta(app, task_id: str, state: str, age: float) -> bytes:
    m = app.backend._get_result_meta(result=42, state=state, traceback=None, request=None)
    m["date_done"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age)).isoformat()
    m["task_id"] = task_id
    value = app.backend.encode(m)
    return value.encode() if isinstance(value, str) else value


def fill_results(client, app, n: int, *, state_of, age_of, ttl_of) -> None:
    template = meta(app, "00000000-0000-0000-0000-000000000000", "SUCCESS", 0)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        tid = str(uuid.uuid4())
        state, age, ttl = state_of(i), age_of(i), ttl_of(i)
        m = json.loads(template)
        m.update(status=state, task_id=tid,
                 date_done=(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age)).isoformat())
        value = json.dumps(m)
        if ttl:
            pipe.set(f"celery-task-meta-{tid}", value, ex=ttl)
        else:
            pipe.set(f"celery-task-meta-{tid}", value)
        if i % CHUNK == CHUNK - 1:
            pipe.execute()
    pipe.execute()


def fill_doctor(client, app, n: int) -> dict[str, int]:
    client.flushdb()
    counts = {"task_result": n * 65 // 100, "group_result": n * 5 // 100, "chord_counter": n * 5 // 100,
              "reply_list": n * 20 // 100}
    counts["other"] = n - sum(counts.values()) - 3
    fill_results(client, app, counts["task_result"], state_of=lambda i: "SUCCESS", age_of=lambda i: i % 7200,
                 ttl_of=lambda i: 0 if i % 3 == 0 else 86400)
    group = json.dumps({"result": [["g", None], [[["t1", None], None]]],
                        "date_done": dt.datetime.now(dt.timezone.utc).isoformat()})
    reply = real_envelope(app, client, "tasks.x", (1,))
    pipe = client.pipeline(transaction=False)
    for i in range(counts["group_result"]):
        pipe.set(f"celery-taskset-meta-{uuid.uuid4()}", group, ex=86400)
        if i < counts["chord_counter"]:
            pipe.set(f"celery-taskset-meta-{uuid.uuid4()}.t", 3, ex=86400)
        if i % CHUNK == 0:
            pipe.execute()
    for i in range(counts["reply_list"]):
        pipe.lpush(f"{uuid.uuid4()}.reply.celery.pidbox", reply)
        if i % CHUNK == 0:
            pipe.execute()
    for i in range(counts["other"]):
        pipe.set(f"app:cache:{i}", "x" * 40)
        if i % CHUNK == 0:
            pipe.execute()
    pipe.execute()
    for q in ("celery", "emails", "reports"):
        push(client, q, [raw for _, raw in clones(reply, 100)])
    return counts


def redis_cli_memkeys(port: int, db: int) -> float:
    binary = shutil.which("redis-cli")
    if binary is None:
        raise SystemExit("redis-cli not found")
    start = time.perf_counter()
    subprocess.run([binary, "-p", str(port), "-n", str(db), "--memkeys"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            import redis

            url = server.url(0)
            client = redis.Redis(port=server.port, db=0)
            app = make_app(url)

            t0 = time.perf_counter()
            counts = fill_doctor(client, app, n)
            print(f"doctor: {client.dbsize():,} keys {counts} (filled in {time.perf_counter() - t0:.0f}s)")
            ref = redis_cli_memkeys(server.port, 0)
            secs, peak = _doctor(url)
            ratio = secs / ref
            ok &= ratio <= 1.5 and peak < 150
            print(f"  redis-cli --memkeys {ref:.2f}s; celerytool doctor {secs:.2f}s; ratio {ratio:.2f} "
                  f"(target <= 1.5); peak {peak:.0f} MB (target < 150)")

            client.flushdb()
            t0 = time.perf_counter()
            fill_results(client, app, n, state_of=lambda i: "SUCCESS" if i % 2 else "FAILURE",
                         age_of=lambda i: 7200, ttl_of=lambda i: 86400)
            print(f"forget: {n:,} results, half SUCCESS (filled in {time.perf_counter() - t0:.0f}s)")
            secs, peak = timed(["forget", "-b", url, "--status", "SUCCESS", "--older-than", "1h", "--yes"])
            left = client.dbsize()
            rate = n / secs
            ok &= rate >= 50_000 and left == n - n // 2
            print(f"  {secs:.2f}s, {rate:,.0f} keys examined/s (target >= 50,000); {n - left:,} deleted; "
                  f"peak {peak:.0f} MB")

            client.flushdb()
            t0 = time.perf_counter()
            templates = [real_envelope(app, client, f"tasks.t{k}", (k, "x"), {"tenant": k}) for k in range(5)]
            for start in range(0, n, 100_000):
                count = min(100_000, n - start)
                push(client, "celery", [raw for k in range(5) for _, raw in clones(templates[k], count // 5)],
                     chunk=5000)
            depth = client.llen("celery")
            print(f"summary: {depth:,} messages, 5 tasks (filled in {time.perf_counter() - t0:.0f}s)")
            secs, peak = timed(["summary", "celery", "-b", url, "-o", "json"])
            rate = depth / secs
            ok &= rate >= 100_000 and peak < 150
            print(f"  {secs:.2f}s, {rate:,.0f} messages/s (target >= 100,000); peak {peak:.0f} MB (target < 150)")
            app.close()
        finally:
            server.stop()
    sys.exit(0 if ok else 1)


def _doctor(url: str) -> tuple[float, float]:
    """doctor exits 1 when it finds something (it will here): time it all the same."""
    import os

    from bench_ops import WRAPPER

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, "doctor", "-b", url, "-o", "json"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    err = proc.stderr.decode()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"doctor failed: {err}")
    return seconds, int(err.rsplit("PEAK_KB ", 1)[1].split()[0]) / 1024


if __name__ == "__main__":
    main()
