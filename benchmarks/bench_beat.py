"""Benchmark beat (issue 18) on django-celery-beat: 10,000 periodic tasks in a migrated database.

Run:  .venv/bin/python benchmarks/bench_beat.py [N]     (default 10,000; needs PostgreSQL on 127.0.0.1:5432)

A database of our own is migrated by Django (tests/djangoproj) and filled with N periodic tasks
(half every-N-seconds intervals, half crontabs in a few time zones), as django-celery-beat
stores them. Then `celerytool beat --store django-db+... -o json` once, as its own process:
wall time (target < 1 s) and peak RSS. Once more after every entry has run (a last run each,
spread over the past hour, as a running beat leaves them): each entry then has a next due of
its own to compute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_failures import run_timed  # noqa: E402

from sqlservices import new_database  # noqa: E402

FILL = '''
import json, sys
import django
django.setup()
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
n = int(sys.argv[1])
zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]
crons = [CrontabSchedule.objects.create(minute=str(i % 60), hour="*/%d" % (1 + i % 6), timezone=zones[i % 4])
         for i in range(50)]
intervals = [IntervalSchedule.objects.create(every=10 + i, period=IntervalSchedule.SECONDS) for i in range(50)]
PeriodicTask.objects.bulk_create([
    PeriodicTask(name=f"entry-{i}", task=f"tasks.t{i % 20}", args=json.dumps([i]),
                 **({"crontab": crons[i % 50]} if i % 2 else {"interval": intervals[i % 50]}))
    for i in range(n)], batch_size=2000)
'''


def ran_once(name: str) -> None:
    """A last run and a run count for every entry, the last runs spread over the past hour."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=name, autocommit=True) as conn:
        conn.execute("UPDATE django_celery_beat_periodictask SET total_run_count = id % 50 + 1, "
                     "last_run_at = now() - (id % 3600) * interval '1 second' - (id % 7) * interval '1 millisecond'")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    project = ROOT / "tests" / "djangoproj"
    db = new_database("postgresql")
    try:
        env = {**os.environ, "CT_DJANGO_DB": db.name, "DJANGO_SETTINGS_MODULE": "ctdjango.settings",
               "PYTHONPATH": str(project)}
        for cmd in ([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                    [sys.executable, "-c", FILL, str(n)]):
            subprocess.run(cmd, cwd=project, env=env, check=True)
        if os.environ.get("BENCH_PROFILE"):
            subprocess.run([sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], "-m", "celerytool",
                            "beat", "--store", "django-db+" + db.url(), "-o", "json"], stdout=subprocess.DEVNULL)
        seconds, peak = run_timed(["beat", "--store", "django-db+" + db.url(), "-o", "json"])
        print(f"beat over {n:,} django-celery-beat entries: {seconds:.2f} s, peak {peak:.0f} MB  (target < 1 s)")
        ran_once(db.name)
        ran, ran_peak = run_timed(["beat", "--store", "django-db+" + db.url(), "-o", "json"])
        print(f"  the same entries, each with a last run: {ran:.2f} s, peak {ran_peak:.0f} MB  (target < 1 s)")
        sys.exit(0 if max(seconds, ran) < 1 else 1)
    finally:
        db.drop()


if __name__ == "__main__":
    main()
