"""Benchmark: `celerytool results --status FAILURE -n 100` on a PostgreSQL table of 1,000,000
Celery results vs the equivalent `psql -c 'SELECT ... ORDER BY date_done DESC LIMIT 100'`.

Target: celerytool in under 2x psql's wall time.  Both read the same database (one of our
own, dropped at the end) in one run; each command once to warm caches, then --repeat times
interleaved, median kept.  Peak RSS of the celerytool process is measured with wait4.

    .venv/bin/python benchmarks/bench_sql_results.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from sqlservices import new_database  # noqa: E402

COLUMNS = "id, task_id, status, result, date_done, traceback, children, name, args, kwargs, worker, retries, queue"
# a child's ru_maxrss starts from its parent's high-water mark: measure from a small process
MEASURE = """\
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def fill(db, rows: int) -> None:
    """Celery's own tables (its models create them), then rows generated inside PostgreSQL:
    1 in 50 a FAILURE with a traceback, dates spread over 30 days, result_extended columns."""
    from celery import Celery

    app = Celery("bench", broker="memory://", backend="db+" + db.driver_url, set_as_current=False)
    app.conf.result_extended = True
    app.backend.store_result("seed", 1, "SUCCESS")  # creates celery_taskmeta / celery_tasksetmeta
    app.close()
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=db.name, autocommit=True) as conn:
        conn.execute(f"""
            INSERT INTO celery_taskmeta ({COLUMNS})
            SELECT nextval('task_id_sequence'), md5(i::text)::uuid::text,
                   CASE WHEN i % 50 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
                   CASE WHEN i % 50 = 0
                        THEN convert_to('{{"exc_type": "ValueError", "exc_message": ["bad", ' || i || '], "exc_module": "builtins"}}', 'UTF8')
                        ELSE convert_to('{{"total": ' || i || ', "items": [1, 2, 3]}}', 'UTF8') END,
                   now() at time zone 'utc' - (random() * interval '30 days'),
                   CASE WHEN i % 50 = 0 THEN 'Traceback (most recent call last):\n  File "tasks.py", line 9, in charge\nValueError: bad' END,
                   NULL, 'billing.charge', convert_to('[' || i || ']', 'UTF8'), convert_to('{{}}', 'UTF8'),
                   'celery@worker-' || (i % 8), 0, 'celery'
            FROM generate_series(1, {rows}) AS i""")
        conn.execute("VACUUM ANALYZE celery_taskmeta")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, env=env)
    seconds, rss_kb, code = out.stdout.split()
    if int(code) != 0:
        sys.exit(f"{cmd[:3]} exited {code}")
    return float(seconds), int(rss_kb)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    if not shutil.which("psql"):
        sys.exit("psql not found (apt-get install postgresql-client)")
    db = new_database("postgresql")
    try:
        started = time.perf_counter()
        fill(db, opts.rows)
        print(f"filled {opts.rows:,} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        ours = [sys.executable, "-m", "celerytool", "results", "--status", "FAILURE", "-n", "100",
                "--backend", "db+" + db.url()]
        ours_json = [*ours, "-o", "json"]
        theirs = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db.name, "-c",
                  f"SELECT {COLUMNS} FROM celery_taskmeta WHERE status = 'FAILURE' "
                  "ORDER BY date_done DESC, id DESC LIMIT 100"]
        commands = {"celerytool (table)": ours, "celerytool -o json": ours_json, "psql": theirs}
        for cmd in commands.values():
            timed(cmd, env)  # warm
        runs: dict[str, list[tuple[float, int]]] = {k: [] for k in commands}
        for _ in range(opts.repeat):
            for name, cmd in commands.items():
                runs[name].append(timed(cmd, env))
        # start-up alone: the same interpreter importing what the command imports, no query
        startup = [sys.executable, "-c", "import celerytool.cli, sqlalchemy, psycopg, "
                   "sqlalchemy.dialects.postgresql.psycopg, rich.table"]
        runs["start-up imports only"] = [timed(startup, env) for _ in range(opts.repeat)]
    finally:
        db.drop()
    med = {k: statistics.median(t for t, _ in v) for k, v in runs.items()}
    peak = {k: max(m for _, m in v) / 1024 for k, v in runs.items()}
    for name in runs:
        print(f"{name:24s} {med[name] * 1000:7.0f} ms   peak RSS {peak[name]:5.0f} MB")
    worst = 0.0
    for name in ("celerytool (table)", "celerytool -o json"):
        ratio = med[name] / med["psql"]
        worst = max(worst, ratio)
        print(f"{name} / psql: {ratio:.2f}x (target < 2x: {'ok' if ratio < 2 else 'MISSED'})")
    query_part = med["celerytool -o json"] - med["start-up imports only"]
    print(f"celerytool -o json minus its import start-up: {query_part * 1000:.0f} ms "
          f"= {query_part / med['psql']:.2f}x psql")
    sys.exit(0 if worst < 2 else 1)


if __name__ == "__main__":
    main()
