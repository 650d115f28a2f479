"""beat: the periodic tasks of a real `celery beat`'s store (the default scheduler's file,
RedBeat, django-celery-beat), listed as beat keeps them; enable/disable seen by a running beat;
run sends an entry once, and a real worker runs it. Expected values come from the schedule
Celery was given (and time zones computed here with zoneinfo), never from celerytool."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from timing import within

from services import wait_for
from workers import HERE, start_worker

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")

BEAT_APP = '''
import os
from datetime import timedelta
from celery import Celery
from celery.schedules import crontab, solar

app = Celery("beatapp", broker=os.environ["CT_BROKER_URL"])
app.conf.timezone = "Europe/Paris"
app.conf.beat_max_loop_interval = 1
app.conf.redbeat_redis_url = os.environ["CT_BROKER_URL"]
app.conf.redbeat_lock_timeout = 30
app.conf.beat_schedule = {
    "every-2s": {"task": "worker_tasks.mark", "schedule": 2.0, "args": ("tick",)},
    "cron": {"task": "worker_tasks.add", "schedule": crontab(minute="0", hour="*/2"), "args": (1, 2),
             "kwargs": {}, "options": {"queue": "celery"}},
    "every-5m": {"task": "worker_tasks.echo", "schedule": timedelta(minutes=5), "kwargs": {"who": "beat"}},
}
if not os.environ.get("CT_NO_SOLAR"):  # RedBeat cannot store solar schedules
    app.conf.beat_schedule["sun"] = {"task": "worker_tasks.mark", "schedule": solar("sunrise", 48.85, 2.35),
                                     "args": ("sun",)}
'''


def start_beat(tmp: Path, broker: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    (tmp / "beatapp.py").write_text(BEAT_APP)
    env = {**os.environ, "CT_BROKER_URL": broker, "PYTHONPATH": os.pathsep.join([str(tmp), str(HERE)]),
           **(env or {})}
    log = open(tmp / "beat.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "beatapp", "beat", "-l", "INFO", *extra],
                            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def next_even_hour_paris(now: dt.datetime) -> dt.datetime:
    """crontab(minute=0, hour='*/2') in Europe/Paris: the next even local hour, as UTC."""
    local = now.astimezone(PARIS).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while local.hour % 2:
        local += dt.timedelta(hours=1)
    return local.astimezone(UTC)


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def check_static_entries(rows: dict, now: dt.datetime) -> None:
    """What every store must show for the entries of BEAT_APP."""
    assert rows["every-2s"]["task"] == "worker_tasks.mark" and rows["every-2s"]["args"] == ["tick"]
    assert rows["every-2s"]["schedule"] == "every 2s"
    assert rows["cron"]["schedule"] == "crontab 0 */2 * * * (Europe/Paris)"
    assert rows["cron"]["args"] == [1, 2] and rows["cron"]["options"]["queue"] == "celery"
    # `now` was read before the command ran, and this check runs after it: an even hour may fall between.
    later = dt.datetime.now(UTC)
    assert when(rows["cron"]["next_due"]) in {next_even_hour_paris(now), next_even_hour_paris(later)}
    assert rows["every-5m"]["schedule"] == "every 5m" and rows["every-5m"]["kwargs"] == {"who": "beat"}
    assert rows["sun"]["schedule"] == "solar sunrise 48.85,2.35"
    sun = when(rows["sun"]["next_due"])
    # The next sunrise: within a day, plus the few minutes sunrise moves from one day to the next
    # (run just after today's sunrise, the next one is tomorrow's, a little over 24 h away).
    assert now - dt.timedelta(seconds=5) < sun < now + dt.timedelta(days=1, minutes=15)
    assert sun.astimezone(PARIS).hour in range(5, 9)  # a Paris sunrise: 05:45 in June to 08:45 in January


# -- the default scheduler's file --------------------------------------------------------------

def test_the_default_schedulers_file(run, redis_server, tmp_path):
    broker = redis_server.url(12)
    beat = start_beat(tmp_path, broker, "-s", str(tmp_path / "celerybeat-schedule"))
    try:
        client = redis.Redis(port=redis_server.port, db=12)
        wait_for(lambda: client.llen("celery") >= 2, 30)  # every-2s has run twice
    finally:
        stop(beat)  # beat writes its file on the way out
    now = dt.datetime.now(UTC)
    r = run("beat", "--store", str(tmp_path / "celerybeat-schedule"), "-o", "json")
    assert r.exit_code == 0, r
    rows = {e["name"]: e for e in r.json()}
    assert set(rows) == {"every-2s", "cron", "every-5m", "sun", "celery.backend_cleanup"}
    check_static_entries(rows, now)
    tick = rows["every-2s"]
    assert tick["total_run_count"] >= 2 and tick["enabled"] is None
    assert abs((when(tick["next_due"]) - when(tick["last_run_at"])).total_seconds() - 2) < 0.01
    five = rows["every-5m"]
    assert abs((when(five["next_due"]) - when(five["last_run_at"])).total_seconds() - 300) < 0.01
    r = run("beat", "disable", "every-2s", "--store", str(tmp_path / "celerybeat-schedule"), "--yes")
    assert r.exit_code == 2 and "read-only" in r.stderr, r


def test_a_hostile_beat_file_runs_nothing_and_stays_bounded(run, tmp_path):
    import dbm.dumb
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "celerybeat-schedule"
    db = dbm.dumb.open(str(path), "c")
    db[b"entries"] = pickle.dumps({"evil": Evil()})
    db[b"tz"] = pickle.dumps("UTC")
    db.close()
    r = run("beat", "--store", str(path), "-o", "json")
    assert r.exit_code == 0 and not marker.exists(), r
    assert r.json()[0]["name"] == "evil" and "posix.system" in r.json()[0]["note"], r
    # a pickle bomb: one opcode asking for a terabyte of bytes
    db = dbm.dumb.open(str(path), "n")
    db[b"entries"] = bytearray(b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b".")  # BINBYTES8 of 1 TB
    db.close()
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "celerytool", "beat", "--store", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < within(20)
    assert out.returncode == 65 and "cannot be read" in out.stderr and "Traceback" not in out.stderr, out


# -- RedBeat -----------------------------------------------------------------------------------

@pytest.fixture
def redbeat(redis_server, tmp_path):
    db = 13
    client = redis.Redis(port=redis_server.port, db=db)
    client.flushdb()
    broker = redis_server.url(db)
    worker = start_worker(broker, tmp_path / "worker")
    beat = start_beat(tmp_path, broker, "-S", "redbeat.RedBeatScheduler", env={"CT_NO_SOLAR": "1"})
    try:
        yield {"url": broker, "client": client, "beat": beat}
    finally:
        stop(beat)
        worker.stop(wait=5)
        client.flushdb()


def marks(client, tag: str) -> int:
    return sum(json.loads(v) == tag for v in client.lrange("ct:record", 0, -1))


def test_redbeat_lists_disable_enable_and_run(run, redbeat):
    url, client = redbeat["url"], redbeat["client"]
    wait_for(lambda: marks(client, "tick") >= 1, 30)
    now = dt.datetime.now(UTC)
    r = run("beat", "--store", url, "--timezone", "Europe/Paris", "-o", "json")
    assert r.exit_code == 0, r
    rows = {e["name"]: e for e in r.json()}
    assert set(rows) == {"every-2s", "cron", "every-5m", "celery.backend_cleanup"}, rows
    assert "is held" in r.stderr, r
    tick = rows["every-2s"]
    assert tick["enabled"] is True and tick["store"] == "redbeat"
    listed_due = when(tick["next_due"])
    assert abs((listed_due - when(tick["last_run_at"])).total_seconds() - 2) < 0.01
    assert rows["cron"]["schedule"] == "crontab 0 */2 * * * (Europe/Paris)"
    # `now` was read before the command ran, and this check runs after it: an even hour may fall between.
    later = dt.datetime.now(UTC)
    assert when(rows["cron"]["next_due"]) in {next_even_hour_paris(now), next_even_hour_paris(later)}
    # the every-2s entry fires when listed: its next run is at the listed due time (a beat tick: 1 s)
    def ran_after() -> dt.datetime | None:
        meta = json.loads(client.hget("redbeat:every-2s", "meta"))["last_run_at"]
        at = dt.datetime(meta["year"], meta["month"], meta["day"], meta["hour"], meta["minute"], meta["second"],
                         meta["microsecond"], tzinfo=ZoneInfo(meta["timezone"]) if isinstance(meta["timezone"], str)
                         else dt.timezone(dt.timedelta(seconds=meta["timezone"])))
        return at if at > when(tick["last_run_at"]) else None
    fired = wait_for(ran_after, 10)
    assert abs((fired - listed_due).total_seconds()) <= within(1.5), (fired, listed_due)
    # disable: the running beat stops sending it
    r = run("beat", "disable", "every-2s", "--store", url, "--yes")
    assert r.exit_code == 0, r
    time.sleep(2.5)  # one send may have been under way
    before = marks(client, "tick")
    time.sleep(5)
    assert marks(client, "tick") == before, "a disabled entry was sent"
    row = {e["name"]: e for e in run("beat", "--store", url, "-o", "json").json()}["every-2s"]
    assert row["enabled"] is False and row["note"].startswith("disabled")
    r = run("beat", "enable", "every-2s", "--store", url, "--yes")
    assert r.exit_code == 0, r
    wait_for(lambda: marks(client, "tick") > before, 15)
    # run: sent once now, through send, and the worker runs it
    r = run("beat", "run", "every-5m", "--store", url, "-b", url, "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["task"] == "worker_tasks.echo"
    from conftest import make_app

    app = make_app(url)
    try:
        assert app.AsyncResult(r.json()["id"]).get(timeout=30) == {"args": [], "kwargs": {"who": "beat"}}
    finally:
        app.close()
    r = run("beat", "disable", "nope", "--store", url, "--yes")
    assert r.exit_code == 66 and "no entry 'nope'" in r.stderr, r


# -- django-celery-beat ------------------------------------------------------------------------

DJANGO_ENTRIES = '''
import datetime as dt, json
import django
django.setup()
from django_celery_beat.models import (ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask,
                                       SolarSchedule)
every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(name="every-2s", task="worker_tasks.mark", interval=every, args=json.dumps(["tick"]))
cron = CrontabSchedule.objects.create(minute="0", hour="*/2", timezone="Europe/Paris")
PeriodicTask.objects.create(name="cron", task="worker_tasks.add", crontab=cron, args="[1, 2]", queue="celery")
five = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
PeriodicTask.objects.create(name="every-5m", task="worker_tasks.echo", interval=five, kwargs=json.dumps({"who": "beat"}))
sun = SolarSchedule.objects.create(event="sunrise", latitude=48.85, longitude=2.35)
PeriodicTask.objects.create(name="sun", task="worker_tasks.mark", solar=sun, args='["sun"]')
xmas = ClockedSchedule.objects.create(clocked_time=dt.datetime(2030, 12, 24, 18, 0, tzinfo=dt.timezone.utc))
PeriodicTask.objects.create(name="xmas", task="worker_tasks.mark", clocked=xmas, one_off=True, args='["xmas"]')
'''


def test_django_celery_beat(run, redis_server, tmp_path):
    from sqlservices import new_database

    project = Path(__file__).parent / "djangoproj"
    db = new_database("postgresql")
    broker_db = 14
    client = redis.Redis(port=redis_server.port, db=broker_db)
    client.flushdb()
    broker = redis_server.url(broker_db)
    env = {**os.environ, "CT_DJANGO_DB": db.name, "CT_BROKER_URL": broker, "DJANGO_SETTINGS_MODULE": "ctdjango.settings",
           "PYTHONPATH": os.pathsep.join([str(project), str(HERE)])}
    worker = beat = None
    try:
        for cmd in ([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                    [sys.executable, "-c", DJANGO_ENTRIES]):
            done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
        worker = start_worker(broker, tmp_path / "worker")
        log = open(tmp_path / "beat.log", "wb")
        beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "ctdjango.tasks", "beat", "-l", "INFO",
                                 "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1"],
                                cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: marks(client, "tick") >= 1, 40)
        store = "django-db+" + db.url()
        now = dt.datetime.now(UTC)
        r = run("beat", "--store", store, "-o", "json")
        assert r.exit_code == 0, r
        rows = {e["name"]: e for e in r.json()}
        assert set(rows) >= {"every-2s", "cron", "every-5m", "sun", "xmas"}, rows
        check_static_entries(rows, now)
        assert rows["xmas"]["schedule"] == "clocked 2030-12-24T18:00Z"
        assert when(rows["xmas"]["next_due"]) == dt.datetime(2030, 12, 24, 18, 0, tzinfo=UTC)
        assert rows["xmas"]["options"]["one_off"] is True and rows["every-2s"]["enabled"] is True
        changes = (tmp_path / "beat.log").read_bytes().count(b"Schedule changed")
        r = run("beat", "disable", "every-2s", "--store", store, "--yes")
        assert r.exit_code == 0, r
        # the scheduler reloads on one of its next ticks (max interval 1 s; later on a busy machine),
        # then the ticks it sent before are run
        wait_for(lambda: (tmp_path / "beat.log").read_bytes().count(b"Schedule changed") > changes, 30)
        wait_for(lambda: client.llen("celery") == 0, 20)
        time.sleep(1)
        before = marks(client, "tick")
        time.sleep(5)
        assert marks(client, "tick") == before, "a disabled entry was sent"
        r = run("beat", "enable", "every-2s", "--store", store, "--yes")
        assert r.exit_code == 0, r
        wait_for(lambda: marks(client, "tick") > before, 20)
        r = run("beat", "--store", "django-db+postgresql://postgres@127.0.0.1:5432/postgres")
        assert r.exit_code == 65 and "migrations" in r.stderr, r  # no tables there: one line
    finally:
        if beat is not None:
            stop(beat)
        if worker is not None:
            worker.stop(wait=5)
        client.flushdb()
        db.drop()


def test_django_celery_beat_on_sqlite(run, tmp_path):
    """The same tables in a SQLite file (the path through SQLAlchemy): listed exactly, and
    disable / enable change the row and bump django_celery_beat_periodictasks.last_update."""
    import sqlite3

    project = Path(__file__).parent / "djangoproj"
    path = tmp_path / "beat.sqlite"
    env = {**os.environ, "CT_DJANGO_SQLITE": str(path), "DJANGO_SETTINGS_MODULE": "ctdjango.settings",
           "PYTHONPATH": os.pathsep.join([str(project), str(HERE)])}
    for cmd in ([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                [sys.executable, "-c", DJANGO_ENTRIES]):
        done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    store = f"django-db+sqlite:///{path}"
    now = dt.datetime.now(UTC)
    r = run("beat", "--store", store, "-o", "json")
    assert r.exit_code == 0, r
    rows = {e["name"]: e for e in r.json()}
    assert set(rows) == {"every-2s", "cron", "every-5m", "sun", "xmas"}, rows
    check_static_entries(rows, now)
    assert when(rows["xmas"]["next_due"]) == dt.datetime(2030, 12, 24, 18, 0, tzinfo=UTC)

    def state() -> tuple[int, object]:
        with sqlite3.connect(path) as db:
            enabled = db.execute("SELECT enabled FROM django_celery_beat_periodictask WHERE name = 'cron'").fetchone()
            changed = db.execute("SELECT last_update FROM django_celery_beat_periodictasks").fetchone()
        return enabled[0], changed and changed[0]

    before = state()
    assert before[0] == 1
    r = run("beat", "disable", "cron", "--store", store, "--dry-run")
    assert r.exit_code == 0 and state() == before, r
    r = run("beat", "disable", "cron", "--store", store, "--yes")
    assert r.exit_code == 0, r
    disabled = state()
    assert disabled[0] == 0 and disabled[1] is not None and disabled[1] != before[1]
    assert {e["name"]: e["enabled"] for e in run("beat", "--store", store, "-o", "json").json()}["cron"] is False
    r = run("beat", "enable", "cron", "--store", store, "--yes")
    assert r.exit_code == 0 and state()[0] == 1, r


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
def test_django_celery_beat_store_errors(run, dialect):
    """No such database: unreachable (69); a database without django-celery-beat's tables: bad
    data (65) naming the migration; both one line, nothing changed."""
    from sqlservices import new_database

    db = new_database(dialect)
    try:
        r = run("beat", "--store", "django-db+" + db.url())
        assert r.exit_code == 65 and "manage.py migrate django_celery_beat" in r.stderr, r
        assert len(r.stderr.strip().splitlines()) == 1, r
        missing = db.url().rsplit("/", 1)[0] + "/celerytool_no_such_db"
        r = run("beat", "disable", "x", "--store", "django-db+" + missing, "--yes")
        assert r.exit_code == 69 and "cannot reach the django-celery-beat database" in r.stderr, r
        assert "internal error" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r
    finally:
        db.drop()
