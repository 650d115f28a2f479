"""result / results on Celery's database backend: PostgreSQL, MariaDB and SQLite, written by
real workers (json + result_extended, pickle without it under other table names)."""

from __future__ import annotations

import datetime as dt
import pickle
import subprocess
import sys

import pytest
import redis

from conftest import make_app
from services import free_port
from sqlservices import new_database
from workers import launch_worker

UTC = dt.timezone.utc
PLAIN_TABLES = "plain_taskmeta,plain_tasksetmeta"
# per worker: result_serializer, result_extended, queue, table names (None: Celery's defaults)
FLAVORS = {
    "json": ("json", True, "sqljson", None),
    "pickle": ("pickle", False, "sqlpickle", PLAIN_TABLES),
}


class Flavor:
    def __init__(self, name, db, worker, app, url):
        self.name, self.db, self.worker, self.app, self.url = name, db, worker, app, url
        serializer, self.extended, self.queue, tables = FLAVORS[name]
        self.tables = tables.split(",") if tables else ["celery_taskmeta", "celery_tasksetmeta"]
        self.options = ["--backend", url] + (["--backend-table-names", f"task={self.tables[0]},group={self.tables[1]}"]
                                             if tables else [])

    def send(self, name, *args, **kwargs):
        return self.app.send_task(f"worker_tasks.{name}", args, kwargs, queue=self.queue)

    def sig(self, name, *args):
        return self.app.signature(f"worker_tasks.{name}", args, queue=self.queue)

    def wait_done(self, *results, timeout=30.0):
        """Until the worker has stored a final state for each (read with plain SQL)."""
        from services import wait_for

        for res in results:
            wait_for(lambda res=res: self.sql(f"SELECT status FROM {self.tables[0]} WHERE task_id = :id",
                                              id=res.id) in ([("SUCCESS",)], [("FAILURE",)]), timeout)

    def save_group(self, result):
        """GroupResult.save(), done by the worker: it has the flavor's backend settings."""
        self.wait_done(self.send("save_group", result.id, [c.id for c in result.results]))

    def sql(self, statement, **params):
        import sqlalchemy as sa

        engine = self.db.engine()
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(statement), params)
                return result.all() if result.returns_rows else None
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["postgresql", "mysql", "sqlite"])
def flavors(request, redis_server, tmp_path_factory):
    """Two real workers, each storing into a database of our own; dropped afterwards.

    Two databases, not one: Celery names the date_done index after its default table
    name even when database_table_names renames the table, so on PostgreSQL a second
    set of tables in the same database fails to create.
    """
    dialect = request.param
    sqlite_dir = str(tmp_path_factory.mktemp("sqlite"))
    broker_db = {"postgresql": 6, "mysql": 7, "sqlite": 8}[dialect]
    redis.Redis(port=redis_server.port, db=broker_db).flushdb()
    broker = redis_server.url(broker_db)
    dbs, workers, apps, out = [], [], [], {}
    try:
        for name, (serializer, extended, queue, tables) in FLAVORS.items():
            dbs.append(new_database(dialect, sqlite_dir))
            env = {"CT_RESULT_BACKEND": "db+" + dbs[-1].driver_url, "CT_RESULT_SERIALIZER": serializer,
                   "CT_RESULT_EXTENDED": "1" if extended else "0", "CT_TABLE_NAMES": tables or ""}
            workers.append(launch_worker(broker, tmp_path_factory.mktemp(f"w-{name}"), queue, env))
        for (name, (serializer, extended, _q, tables)), worker, db in zip(FLAVORS.items(), workers, dbs,
                                                                          strict=True):
            worker.wait_ready()
            # Celery renames its table models process-wide (Task.configure), so only the flavor
            # with Celery's default names gets a database backend in this process
            backend = "disabled://" if tables else "db+" + db.driver_url
            app = make_app(broker, backend=backend, result_serializer=serializer, result_extended=extended)
            apps.append(app)
            # celerytool gets Celery's own spellings: no driver named (json) and the driver named (pickle)
            url = "db+" + (db.url() if name == "json" else db.driver_url)
            out[name] = Flavor(name, db, worker, app, url)
        yield out
    finally:
        for worker in workers:
            worker.stop()
        for app in apps:
            app.close()
        for db in dbs:
            db.drop()


@pytest.fixture(params=list(FLAVORS))
def flavor(request, flavors):
    return flavors[request.param]


def test_success_fields_as_on_redis(run, flavor):
    res = flavor.send("add", 2, 3)
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", *flavor.options)
    assert r.exit_code == 0, r
    out, = r.json()  # one id: still an array
    assert out["id"] == res.id and out["status"] == "SUCCESS" and out["result"] == 5
    assert out["traceback"] is None and out["children"] == [] and out["exception"] is None
    assert dt.datetime.fromisoformat(out["date_done"]) > dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    if flavor.extended:
        assert out["name"] == "worker_tasks.add" and out["args"] == [2, 3] and out["kwargs"] == {}
        assert out["worker"] == flavor.worker.name and out["retries"] == 0 and out["queue"] == flavor.queue
    else:  # a table made without result_extended has no such columns
        assert not {"name", "args", "kwargs", "worker", "retries", "queue"} & set(out)
    if flavor.name == "json":
        assert res.get(timeout=10) == 5  # Celery reads the same row


def test_failure_exception_and_traceback(run, flavor):
    res = flavor.send("fail", "bad")
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", *flavor.options)
    assert r.exit_code == 1, r
    out, = r.json()  # one id: still an array
    assert out["status"] == "FAILURE"
    assert out["exception"] == {"type": "CustomError", "module": "worker_tasks", "message": "bad, 42"}
    assert "Traceback (most recent call last)" in out["traceback"] and "CustomError" in out["traceback"]
    r = run("result", res.id, *flavor.options)
    assert r.exit_code == 1 and "worker_tasks.CustomError: bad, 42" in r.stdout, r


def test_results_failures_since_newest_first(run, flavor):
    f1, f2, f3 = (flavor.send("fail", f"f{i}") for i in (1, 2, 3))
    ok = flavor.send("add", 1, 1)
    flavor.wait_done(f1, f2, f3, ok)
    flavor.sql(f"UPDATE {flavor.tables[0]} SET date_done = :when WHERE task_id = :id",
               when=dt.datetime.now(UTC).replace(tzinfo=None) - dt.timedelta(hours=2), id=f1.id)

    r = run("results", "--status", "FAILURE", "--since", "1h", "-o", "json", *flavor.options)
    assert r.exit_code == 0, r
    rows = r.json()
    assert [x["id"] for x in rows[:2]] == [f3.id, f2.id]
    assert f1.id not in {x["id"] for x in rows} and {x["status"] for x in rows} == {"FAILURE"}
    assert rows[0]["exception"]["message"] == "f3, 42"
    r = run("results", "--status", "FAILURE", "--since", "1h", "-n", "1", "-o", "json", *flavor.options)
    assert [x["id"] for x in r.json()] == [f3.id]
    r = run("results", "--status", "failure", "-n", "1000", "-o", "json", *flavor.options)
    assert r.json()[-1]["id"] == f1.id  # the oldest last
    r = run("results", "-n", "1", "-o", "json", *flavor.options)
    assert [x["id"] for x in r.json()] == [ok.id]
    r = run("results", "--task", "worker_tasks.f?il", "-n", "1", "-o", "json", *flavor.options)
    assert [x["id"] for x in r.json()] == ([f3.id] if flavor.extended else []), r
    r = run("results", "--task", "WORKER_TASKS.*", "-o", "json", *flavor.options)  # case counts, as on Redis
    assert r.json() == []
    r = run("results", "--task", "worker_tasks.add", "--task", "worker_tasks.f?il", "-n", "2", "-o", "json",
            *flavor.options)  # any of the globs: one OR of LIKEs
    assert [x["id"] for x in r.json()] == ([ok.id, f3.id] if flavor.extended else []), r
    r = run("results", "--status", "FAILURE", "--since", "1h", "--full-ids", *flavor.options)
    assert f3.id in r.stdout and "CustomError: f3, 42" in r.stdout and ok.id not in r.stdout


def test_wait_follows_until_done(run, flavor):
    res = flavor.send("slow", 0.5)
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", *flavor.options)
    assert r.exit_code == 0, r
    assert r.json()[0]["result"] == 0.5
    states = [line.split(": ")[1].split()[0] for line in r.stderr.splitlines()]
    assert states[0] in ("PENDING", "STARTED") and states[-1] == "SUCCESS", r
    if flavor.name != "json":
        return
    r = run("result", "never-sent", "--wait", "--timeout", "0.3", *flavor.options)
    assert r.exit_code == 124 and "timed out" in r.stderr, r
    r = run("result", "never-sent", "-o", "json", *flavor.options)
    assert r.exit_code == 3 and r.json()[0]["status"] == "PENDING"


def test_group_results(run, flavor):
    from celery import group

    ok = group(flavor.sig("add", 1, 1), flavor.sig("add", 2, 2)).apply_async()
    flavor.save_group(ok)
    r = run("result", ok.id, "--wait", "--timeout", "30", "-o", "json", *flavor.options)
    assert r.exit_code == 0, r
    out, = r.json()  # one id: still an array
    assert out["group"] is True and out["status"] == "SUCCESS"
    assert out["children"] == [c.id for c in ok.results]
    assert out["result"] == {"tasks": {c.id: "SUCCESS" for c in ok.results}}
    bad = group(flavor.sig("add", 1, 1), flavor.sig("fail", "g")).apply_async()
    flavor.save_group(bad)
    flavor.wait_done(*bad.results)
    r = run("result", bad.id, "-o", "json", *flavor.options)
    assert r.exit_code == 1 and r.json()[0]["status"] == "FAILURE", r


def test_corrupt_values_shown_with_their_error(run, flavors):
    flavor = flavors["json"]
    bad_pickle, bad_json, good = (flavor.send("add", i, i) for i in (3, 4, 5))
    flavor.wait_done(bad_pickle, bad_json, good)
    for res, raw in ((bad_pickle, b"\x80\x04\x95garbage"), (bad_json, b'{"a": ')):
        flavor.sql(f"UPDATE {flavor.tables[0]} SET result = :raw WHERE task_id = :id", id=res.id, raw=raw)
    r = run("results", "-n", "1000", "-o", "json", *flavor.options)
    assert r.exit_code == 0, r
    rows = {x["id"]: x for x in r.json()}
    assert "not a valid pickle" in rows[bad_pickle.id]["error"]
    assert "not valid JSON" in rows[bad_json.id]["error"]
    assert rows[good.id]["result"] == 10 and "error" not in rows[good.id]
    r = run("results", "-n", "1000", "--full-ids", *flavor.options)
    assert "undecodable: result: not a valid pickle" in r.stdout and good.id in r.stdout
    r = run("result", bad_json.id, *flavor.options)
    assert r.exit_code == 0 and "not valid JSON" in r.stdout, r


def test_missing_table_exit_66(run, flavors):
    flavor = flavors["json"]
    r = run("results", "--backend", flavor.url, "--backend-table-names", "task=no_such_taskmeta")
    assert r.exit_code == 66 and "no_such_taskmeta" in r.stderr and len(r.stderr.splitlines()) == 1, r


# -- without workers ----------------------------------------------------------------------
def test_pickle_is_read_inertly(run, tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    path = tmp_path / "r.sqlite"
    app = make_app("memory://", backend=f"db+sqlite:///{path}", result_serializer="pickle")
    app.backend.store_result("ok", 1, "SUCCESS")
    app.close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE celery_taskmeta SET result = ? WHERE task_id = 'ok'", (pickle.dumps(Evil()),))
    # CELERY_RESULT_BACKEND, the app's own setting, names the backend as --backend does
    r = run("result", "ok", "-o", "json", env={"CELERY_RESULT_BACKEND": f"db+sqlite:///{path}"})
    assert r.exit_code == 0, r
    assert r.json()[0]["result"]["__type__"] == "pickle" and "subprocess.call" in r.stdout
    assert not marker.exists()


def test_unreachable_and_bad_password_exit_69(run):
    r = run("result", "x", "--backend", f"db+postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x")
    assert r.exit_code == 69 and "Connection refused" in r.stderr and "s3cret" not in r.stderr, r
    assert len(r.stderr.strip().splitlines()) == 1
    from sqlservices import ensure_mariadb

    ensure_mariadb()
    r = run("results", "--backend", "db+mysql://root:s3cr%40t@127.0.0.1:3306/mysql")
    assert r.exit_code == 69 and "Access denied" in r.stderr, r
    assert "s3cr" not in r.stderr and "***" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_missing_sqlite_file_exit_66(run, tmp_path):
    r = run("results", "--backend", f"db+sqlite:///{tmp_path}/none.sqlite")
    assert r.exit_code == 66 and "none.sqlite" in r.stderr, r
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates it


def test_without_the_db_extra_one_line_exit_2(tmp_path):
    shadow = tmp_path / "shadow" / "sqlalchemy"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'sqlalchemy'\", "
                                        "name='sqlalchemy')\n")
    done = subprocess.run([sys.executable, "-m", "celerytool", "results", "--backend",
                           f"db+sqlite:///{tmp_path}/r.sqlite"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path / "shadow"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [
        "celerytool: error: database result backends need SQLAlchemy and a driver: pip install 'celerytool[db]'"]


def test_failures_grouped_and_retried(run, flavor, tmp_path):
    """failures / retry on a database backend: the counts the worker was made to fail with."""
    fixed = str(tmp_path / "fixed")
    asked = {"value": [1, 2, 3], "timeout": [4, 5]}
    sent = {kind: [flavor.send("flaky", kind, n, fixed=fixed) for n in ns] for kind, ns in asked.items()}
    flavor.wait_done(*(res for group in sent.values() for res in group))
    r = run("failures", "-o", "json", "--ids", *flavor.options)
    assert r.exit_code == 1, r
    groups = {g["exception"]: g for g in r.json()}
    assert sorted(groups["ValueError"]["ids"]) == sorted(res.id for res in sent["value"])
    assert sorted(groups["TimeoutError"]["ids"]) == sorted(res.id for res in sent["timeout"])
    assert groups["TimeoutError"]["message"] == "Timeout connecting to 10.0.0.# after # s (request #)"
    assert groups["ValueError"]["message"] == "bad value #"
    if flavor.extended:  # task names: --task narrows to exactly these
        r = run("failures", "--task", "worker_tasks.flaky", "-o", "json", *flavor.options)
        assert {g["exception"]: g["count"] for g in r.json()} == {"ValueError": 3, "TimeoutError": 2}
        r = run("failures", "--by", "task", "--task", "worker_tasks.flaky", "-o", "json", *flavor.options)
        assert [(g["task"], g["count"]) for g in r.json()] == [("worker_tasks.flaky", 5)]
    open(fixed, "w").close()
    ids = [res.id for res in sent["value"]]
    r = run("retry", *ids, "--yes", "-o", "json", *flavor.options, "-b", flavor.worker.broker_url)
    if not flavor.extended:  # no name / args stored: each id said and skipped
        assert r.exit_code == 1 and r.stdout == ""
        assert all(f"cannot retry {i}: no task name stored" in r.stderr for i in ids)
        return
    assert r.exit_code == 0, r
    rows = r.json()
    assert sorted(row["id"] for row in rows) == sorted(ids) and {row["queue"] for row in rows} == {flavor.queue}
    for row in rows:
        assert flavor.app.AsyncResult(row["new_id"]).get(timeout=30)["fixed"] == "value"
