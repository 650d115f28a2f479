"""Speed of the steering commands (issue 20) against two real workers, ratios from one run.

``celerytool rate-limit`` / ``time-limit`` / ``pause`` / ``resume`` vs ``celery -b URL control
rate_limit`` / ``time_limit`` / ``cancel_consumer`` / ``add_consumer`` with the same --timeout (target: at most 0.5x celery's wall time): celery waits
out its timeout, celerytool returns once every worker that answered the ping has answered.
Peak RSS of celerytool is printed. On Redis, and on RabbitMQ (a vhost of our own) when one
answers on 127.0.0.1:5672.

Usage: python benchmarks/bench_steer.py [--no-amqp]      Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_live import run, two_workers  # noqa: E402

from services import port_open, start_redis  # noqa: E402


def compare(url: str, timeout: float, label: str) -> bool:
    me = [sys.executable, "-m", "celerytool"]
    celery = [sys.executable, "-m", "celery", "-b", url, "control"]
    t = str(timeout)
    pairs = {
        "rate-limit": (me + ["rate-limit", "worker_tasks.add", "10/s", "-b", url, "-t", t, "--yes", "-o", "json"],
                       celery + ["rate_limit", "worker_tasks.add", "10/s", "--timeout", t]),
        "time-limit": (me + ["time-limit", "worker_tasks.add", "--soft", "5", "--hard", "10", "-b", url, "-t", t,
                             "--yes", "-o", "json"],
                       celery + ["time_limit", "worker_tasks.add", "5", "10", "--timeout", t]),
    }
    ok = True
    # pause / resume change the workers: each pair restores what the other did (ours, then theirs)
    pause = (me + ["pause", "q1", "-b", url, "-t", t, "--yes", "-o", "json"],
             celery + ["cancel_consumer", "q1", "--timeout", t])
    resume = (me + ["resume", "q1", "-b", url, "-t", t, "--yes", "-o", "json"],
              celery + ["add_consumer", "q1", "--timeout", t])
    times: dict[str, list[tuple[float, int]]] = {"pause": [], "resume": [], "cancel": [], "add": []}
    for _ in range(2):  # the first round warms up
        times["pause"].append(run(pause[0]))
        times["resume"].append(run(resume[0]))
        times["cancel"].append(run(pause[1]))
        times["add"].append(run(resume[1]))
    for name, theirs in (("pause", "cancel"), ("resume", "add")):
        (a, rss), (b, _) = times[name][-1], times[theirs][-1]
        ratio = a / b
        ok &= ratio <= 0.5
        print(f"{label:9} {name:11} celerytool {a * 1000:6.0f} ms  celery control {b * 1000:6.0f} ms  "
              f"ratio {ratio:4.2f} ({'ok' if ratio <= 0.5 else 'MISSED'} <= 0.5)  peak RSS {rss / 1024:.0f} MB")
    for name, (ours, theirs) in pairs.items():
        run(ours), run(theirs)  # warm-up
        a, rss = run(ours)
        b, _ = run(theirs)
        ratio = a / b
        ok &= ratio <= 0.5
        print(f"{label:9} {name:11} celerytool {a * 1000:6.0f} ms  celery control {b * 1000:6.0f} ms  "
              f"ratio {ratio:4.2f} ({'ok' if ratio <= 0.5 else 'MISSED'} <= 0.5)  peak RSS {rss / 1024:.0f} MB")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-amqp", action="store_true")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = start_redis(tmp / "redis")
        workers = []
        try:
            workers = two_workers(server.url(0), tmp / "redis-workers")
            ok &= compare(server.url(0), 1.0, "Redis")
        finally:
            for w in workers:
                w.stop(wait=5)
        if not args.no_amqp and port_open("127.0.0.1", 5672):
            from services import new_vhost

            vhost = new_vhost("celerytool-bench-steer")
            workers = []
            try:
                workers = two_workers(vhost.url(), tmp / "amqp-workers", backend=server.url(1))
                ok &= compare(vhost.url(), 1.0, "RabbitMQ")
            finally:
                for w in workers:
                    w.stop(wait=5)
                vhost.delete()
        server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
