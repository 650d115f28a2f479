"""Hostile and broken conditions on the SQL result backends (issue 16, item 5): a table locked by
another session (PostgreSQL LOCK TABLE ... ACCESS EXCLUSIVE, MariaDB LOCK TABLES ... WRITE) is
waited for --connect-timeout, then exit 69; a password with '@' and other specials never shows,
not even its tail."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from conftest import make_app
from sqlservices import HOST, MYSQL_PORT, PG_PORT, new_database


@pytest.fixture(params=["postgresql", "mysql"])
def stored(request, tmp_path):
    """One result stored by Celery's own database backend."""
    from celery.app.task import Context

    db = new_database(request.param, str(tmp_path))
    app = make_app("memory://", backend="db+" + db.driver_url, result_extended=True)
    try:
        app.backend.store_result("t-1", 42, "SUCCESS", request=Context(id="t-1", task="tasks.a"))
        yield db
    finally:
        app.close()
        db.drop()


def cli(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    return subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], env=env, text=True,
                          capture_output=True, timeout=timeout)


class TableLock:
    """Another session holding the results table locked until released."""

    def __init__(self, db):
        self.db = db
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        if self.db.dialect == "postgresql":
            import psycopg

            with psycopg.connect(host=HOST, port=PG_PORT, user="postgres", dbname=self.db.name) as conn:
                conn.execute("LOCK TABLE celery_taskmeta IN ACCESS EXCLUSIVE MODE")
                self.held.set()
                self.release.wait(120)
                conn.rollback()
        else:
            import pymysql

            conn = pymysql.connect(host=HOST, port=MYSQL_PORT, user="root", password="", database=self.db.name)
            try:
                conn.cursor().execute("LOCK TABLES celery_taskmeta WRITE")
                self.held.set()
                self.release.wait(120)
                conn.cursor().execute("UNLOCK TABLES")
            finally:
                conn.close()

    def __enter__(self):
        self.thread.start()
        assert self.held.wait(30)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(30)


@pytest.mark.parametrize("args", [("result", "t-1"), ("results", "-n", "5"), ("forget", "t-1", "--yes")],
                         ids=["result", "results", "forget"])
def test_a_locked_table_is_exit_69_after_the_connect_timeout(stored, args):
    url = "db+" + stored.url()
    with TableLock(stored):
        r = cli(*args, "--backend", url, "--connect-timeout", "2", "-o", "json")
    assert r.returncode == 69, (r.returncode, r.stdout, r.stderr)
    assert "did not answer in time" in r.stderr and "Traceback" not in r.stderr
    again = cli("result", "t-1", "--backend", url, "-o", "json")  # the row is still there
    assert again.returncode == 0 and again.stdout.count("42"), again


@pytest.mark.parametrize("password", ["SECRET@TAIL", "S3:CR@T@IL", "p@ss%40w;rd@x"])
def test_a_password_with_an_at_sign_never_shows(stored, password):
    from urllib.parse import quote

    user = "postgres" if stored.dialect == "postgresql" else "root"
    port = PG_PORT if stored.dialect == "postgresql" else MYSQL_PORT
    for host in (HOST, "no-such-host.invalid"):
        url = f"db+{stored.dialect}://{user}:{password}@{host}:{port}/{stored.name}"
        r = cli("result", "t-1", "--backend", url, "--connect-timeout", "3", "-o", "json")
        text = r.stdout + r.stderr
        fragments = {password, quote(password, safe=""), *password.split("@")[1:], *password.split(":")[1:]}
        for fragment in fragments - {"T", "x"}:  # one letter would match anything
            assert fragment not in text, (fragment, text)
        assert "Traceback" not in r.stderr
        if host != HOST:
            assert r.returncode == 69, r
            assert "no-such-host.invalid" in r.stderr  # the host as given, not a password's tail


PEAK = ("import resource, subprocess, sys\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
        "sys.stderr.buffer.write(rc.stderr[-2000:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, rc.returncode)\n")


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_50_mb_result_on_postgresql_stays_within_five_times_its_size(tmp_path, output):
    """bytea arrives in PostgreSQL's binary format (hex text, twice its size, peaked at 346 MB)."""
    from celery.app.task import Context

    db = new_database("postgresql", str(tmp_path))
    app = make_app("memory://", backend="db+" + db.driver_url, result_extended=True)
    try:
        value = "x" * 50_000_000
        app.backend.store_result("big-1", value, "SUCCESS", request=Context(id="big-1", task="tasks.a"))
        del value
        env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
        r = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "celerytool", "result", "big-1",
                            "--backend", "db+" + db.driver_url, "-o", output],
                           capture_output=True, text=True, timeout=120, env=env)
        mb, rc = map(int, r.stdout.split())
        print(f"\nresult of 50 MB on PostgreSQL, -o {output}: peak {mb} MB")
        assert rc == 0, r.stderr
        assert mb < 275, mb
    finally:
        app.close()
        db.drop()


@pytest.mark.parametrize("backend", ["db+nosuchdialect://u:Se%40cret-pw@h/x", "db+postgresql+nodriver://u:Se%40cret-pw@h/x",
                                     "django-db+nosuchdialect://u:Se%40cret-pw@h/x"])
@pytest.mark.parametrize("command", [("results",), ("result", "t-1"), ("failures",), ("forget", "--all", "--dry-run")])
def test_a_database_sqlalchemy_does_not_know_is_a_usage_error(run, redis_url, backend, command):
    """Once exit 70 (SQLAlchemy's NoSuchModuleError when the engine was made)."""
    r = run(*command, "-b", redis_url, "--backend", backend)
    assert r.exit_code == 2, r
    assert "not a database URL" in r.stderr and "SQLAlchemy knows no database" in r.stderr
    assert "cret-pw" not in r.stderr + r.stdout
