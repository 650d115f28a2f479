"""Benchmark failures and retry (issue 19) on a private Redis.

Run:  .venv/bin/python benchmarks/bench_failures.py [N] [RETRY_N]   (default 1,000,000 and 100,000)

- failures over N stored results, 10% FAILURE (three exceptions, numbers in the messages),
  the rest SUCCESS, as Celery's Redis backend stores them with result_extended: results
  examined per second (target >= 100,000), peak RSS < 150 MB.
- failures over N rows of Celery's database backend on PostgreSQL (result_extended, 10%
  FAILURE, pickled exceptions as Celery stores them): rows/s, peak RSS, and the transactions
  celerytool ran on that database (pg_stat_database), to show one streamed query, not one per row.
- retry of RETRY_N stored failures (--yes, to a queue nobody consumes) vs a loop of Celery's
  `app.send_task` on the same server: tasks per second, the ratio (target >= 20x).
Each celerytool command runs once, as its own process; peak RSS is VmHWM read inside it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ops import timed  # noqa: E402
from bench_send import anchor_rate  # noqa: E402

from conftest import make_app  # noqa: E402
from services import start_redis  # noqa: E402

CHUNK = 10_000
EXCEPTIONS = [(ValueError, "bad value {n}"), (TimeoutError, "Timeout connecting to 10.0.0.{d} after {n} s"),
              (KeyError, "missing {n}")]


def run_timed(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one celerytool process; exit 1 ("there are failures") is an answer."""
    return timed(args, ok_codes=(0, 1))


def fill(client, app, n: int, failed_every: int) -> int:
    """n results as Celery stores them (json, result_extended); every failed_every-th a FAILURE."""
    backend = app.backend
    now = dt.datetime.now(dt.timezone.utc)
    failed = 0
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        tid = str(uuid.uuid4())
        if i % failed_every == 0:
            kind, text = EXCEPTIONS[failed % 3]
            exc = kind(text.format(n=i % 97, d=i % 10))
            meta = {"status": "FAILURE", "result": backend.prepare_exception(exc),
                    "traceback": f"Traceback (most recent call last):\n  ...\n{kind.__name__}: {exc}\n"}
            failed += 1
        else:
            meta = {"status": "SUCCESS", "result": i, "traceback": None}
        meta.update(children=[], date_done=(now - dt.timedelta(seconds=i % 3600)).isoformat(), task_id=tid,
                    name="tasks.work", args=[i, "x"], kwargs={"n": i}, worker="celery@bench", retries=0,
                    queue="celery")
        pipe.set(f"celery-task-meta-{tid}", json.dumps(meta))
        if i % CHUNK == CHUNK - 1:
            pipe.execute()
    pipe.execute()
    return failed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    retry_n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            run(server, n, retry_n)
        finally:
            server.stop()


def run(server, n: int, retry_n: int) -> None:
    import redis

    ok = True
    url = server.url(0)
    client = redis.Redis.from_url(url)
    app = make_app(url)
    failed = fill(client, app, n, 10)
    seconds, peak = run_timed(["failures", "-b", url, "-o", "json"])
    rate = n / seconds
    ok &= rate >= 100_000 and peak < 150
    print(f"failures over {n:,} results ({failed:,} failed): {seconds:.2f} s, {rate:,.0f} results/s "
          f"examined, peak {peak:.0f} MB  (target >= 100,000/s, < 150 MB)")

    url2 = server.url(1)
    client2 = redis.Redis.from_url(url2)
    fill(client2, app, retry_n, 1)
    seconds, peak = run_timed(["retry", "-b", url2, "--queue", "bench-retry", "--yes"])
    sent = client2.llen("bench-retry")
    ours = sent / seconds
    anchor = anchor_rate(server.url(2), 3.0)
    ratio = ours / anchor
    ok &= ratio >= 20 and sent == retry_n
    print(f"retry of {retry_n:,} failures: {seconds:.2f} s, {ours:,.0f} tasks/s, peak {peak:.0f} MB; "
          f"app.send_task loop {anchor:,.0f} tasks/s; {ratio:.1f}x  (target >= 20x)")
    app.close()
    if "--no-sql" not in sys.argv:
        ok &= run_sql(n)
    sys.exit(0 if ok else 1)


def run_sql(n: int) -> bool:
    """failures on PostgreSQL over n rows: results/s, and how many statements celerytool sent."""
    import pickle

    from celery.backends.base import Backend

    from sqlservices import new_database

    db = new_database("postgresql")
    try:
        import psycopg

        prepare = Backend(app=make_app("memory://")).prepare_exception
        pickles = [pickle.dumps(prepare(kind(text.format(n=7, d=3)))) for kind, text in EXCEPTIONS]
        with psycopg.connect(db.url().replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
            conn.execute("""CREATE TABLE celery_taskmeta (id serial PRIMARY KEY, task_id varchar(155) UNIQUE,
                status varchar(50), result bytea, date_done timestamp, traceback text, name varchar(155),
                args bytea, kwargs bytea, worker varchar(155), retries integer, queue varchar(155))""")
            conn.execute("CREATE INDEX ix_date_done ON celery_taskmeta (date_done)")
            conn.execute("""INSERT INTO celery_taskmeta (task_id, status, result, date_done, traceback, name,
                    args, kwargs, worker, retries, queue)
                SELECT md5(i::text), CASE WHEN i %% 10 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
                    CASE WHEN i %% 10 <> 0 THEN %(ok)s WHEN i %% 30 = 0 THEN %(e0)s WHEN i %% 30 = 10 THEN %(e1)s
                         ELSE %(e2)s END,
                    now() at time zone 'utc' - (i %% 3600) * interval '1 second',
                    CASE WHEN i %% 10 = 0 THEN 'Traceback (most recent call last):' || chr(10) || 'X: y' END,
                    'tasks.work', %(args)s, %(kwargs)s, 'celery@bench', 0, 'celery'
                FROM generate_series(1, %(n)s) AS i""",
                         {"ok": pickle.dumps(1), "e0": pickles[0], "e1": pickles[1], "e2": pickles[2],
                          "args": pickle.dumps([1, "x"]), "kwargs": pickle.dumps({}), "n": n})
            conn.execute("ANALYZE celery_taskmeta")
            before = _statements(conn, db.name)
            seconds, peak = run_timed(["failures", "--backend", "db+" + db.url(), "-o", "json"])
            sent = _statements(conn, db.name) - before
        rate = n / seconds
        print(f"failures over {n:,} PostgreSQL rows ({n // 10:,} failed): {seconds:.2f} s, {rate:,.0f} rows/s, "
              f"peak {peak:.0f} MB, {sent} transaction(s) on the database  (one query, no per-row round trips)")
        return sent <= 10  # set-up statements and one streamed query, not one per row
    finally:
        db.drop()


def _statements(conn, name: str) -> int:
    """Transactions committed or rolled back on database ``name`` (the statistics collector's count)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                       (name,)).fetchone()
    return int(row[0])


if __name__ == "__main__":
    main()
