"""Benchmark delayed (issue 18) on a private Redis: N ETA tasks held in kombu's unacked hash.

Run:  .venv/bin/python benchmarks/bench_delayed.py [N]     (default 100,000)

One real Celery envelope with a countdown (send_task), cloned N times with new ids and
delivery tags, stored as kombu stores a prefetched message: `unacked` (tag -> [envelope,
exchange, routing_key]) and `unacked_index` (tag -> delivery time). Then `celerytool delayed
-o json` once, as its own process: tasks per second (target >= 50,000), peak RSS inside it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_failures import run_timed  # noqa: E402
from msgfactory import clones, real_envelope  # noqa: E402

from conftest import make_app  # noqa: E402
from services import start_redis  # noqa: E402


def main() -> None:
    import redis

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            url = server.url(0)
            client = redis.Redis.from_url(url)
            app = make_app(url)
            template = real_envelope(app, client, "tasks.later", (1,), countdown=600)
            now = time.time()
            pipe = client.pipeline(transaction=False)
            for i, (_tid, raw) in enumerate(clones(template, n)):
                tag = json.loads(raw)["properties"]["delivery_tag"]
                pipe.hset("unacked", tag, json.dumps([json.loads(raw), "", "celery"]))
                pipe.zadd("unacked_index", {tag: now - i % 600})
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            seconds, peak = run_timed(["delayed", "-b", url, "-o", "json"])
            rate = n / seconds
            print(f"delayed over {n:,} ETA tasks in unacked: {seconds:.2f} s, {rate:,.0f} tasks/s, "
                  f"peak {peak:.0f} MB  (target >= 50,000/s)")
            app.close()
            sys.exit(0 if rate >= 50_000 else 1)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
