"""result / results on django-celery-results: a minimal Django project (tests/djangoproj) with
CELERY_RESULT_BACKEND='django-db', migrated onto PostgreSQL, real workers storing results."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from conftest import make_app
from services import wait_for
from sqlservices import new_database
from workers import launch_worker

UTC = dt.timezone.utc
PROJECT = Path(__file__).parent / "djangoproj"
QUEUES = {"json": "djjson", "pickle": "djpickle"}


class Project:
    def __init__(self, db, app, workers):
        self.db, self.app, self.workers = db, app, workers
        self.url = "django-db+" + db.url()

    def send(self, serializer, name, *args):
        return self.app.send_task(f"ctdjango.{name}", args, queue=QUEUES[serializer])

    def status(self, task_id):
        import sqlalchemy as sa

        engine = self.db.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT status FROM django_celery_results_taskresult "
                                            "WHERE task_id = :id"), {"id": task_id}).scalar()
        finally:
            engine.dispose()

    def wait_done(self, *results):
        for res in results:
            wait_for(lambda res=res: self.status(res.id) in ("SUCCESS", "FAILURE"), 30)


@pytest.fixture(scope="module")
def project(redis_server, tmp_path_factory):
    db = new_database("postgresql")
    broker_db = 9
    redis.Redis(port=redis_server.port, db=broker_db).flushdb()
    broker = redis_server.url(broker_db)
    env = {**os.environ, "CT_DJANGO_DB": db.name, "CT_BROKER_URL": broker,
           "DJANGO_SETTINGS_MODULE": "ctdjango.settings", "PYTHONPATH": str(PROJECT)}
    workers, app = [], None
    try:
        done = subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=PROJECT,
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        for serializer, queue in QUEUES.items():
            workers.append(launch_worker(broker, tmp_path_factory.mktemp(f"dj-{serializer}"), queue,
                                         {**env, "CT_RESULT_SERIALIZER": serializer},
                                         app="ctdjango.tasks", cwd=PROJECT))
        for worker in workers:
            worker.wait_ready()
        app = make_app(broker, backend="disabled://")
        yield Project(db, app, {s: w for s, w in zip(QUEUES, workers, strict=True)})
    finally:
        for worker in workers:
            worker.stop()
        if app is not None:
            app.close()
        db.drop()


@pytest.mark.parametrize("serializer", list(QUEUES))
def test_success_and_failure_fields(run, project, serializer):
    ok = project.send(serializer, "add", 2, 3)
    r = run("result", ok.id, "--wait", "--timeout", "30", "-o", "json", "--backend", project.url)
    assert r.exit_code == 0, r
    out, = r.json()  # one id: still an array
    assert out["status"] == "SUCCESS" and out["result"] == 5 and out["children"] == []
    assert out["name"] == "ctdjango.add" and out["args"] == [2, 3] and out["kwargs"] == {}
    assert out["worker"] == project.workers[serializer].name and out["traceback"] is None
    assert dt.datetime.fromisoformat(out["date_done"]) > dt.datetime.now(UTC) - dt.timedelta(minutes=5)

    bad = project.send(serializer, "fail", "bad")
    r = run("result", bad.id, "--wait", "--timeout", "30", "-o", "json", "--backend", project.url)
    assert r.exit_code == 1, r
    out, = r.json()  # one id: still an array
    assert out["status"] == "FAILURE" and "CustomError" in out["traceback"]
    assert out["exception"] == {"type": "CustomError", "module": "ctdjango.tasks", "message": "bad, 42"}


def test_results_failures_since_and_group(run, project):
    from celery import group

    added = project.send("json", "add", 1, 1)  # for --task below: this test's own row
    f1, f2 = project.send("json", "fail", "a"), project.send("pickle", "fail", "b")
    project.wait_done(added, f1, f2)
    r = run("results", "--status", "FAILURE", "--since", "1h", "-o", "json", "--backend", project.url)
    assert r.exit_code == 0, r
    rows = r.json()
    assert {f1.id, f2.id} <= {x["id"] for x in rows} and {x["status"] for x in rows} == {"FAILURE"}
    assert rows[0]["id"] in (f1.id, f2.id)  # the newest first
    r = run("results", "--task", "ctdjango.ad?", "-o", "json", "--backend", project.url)
    assert r.json() and {x["name"] for x in r.json()} == {"ctdjango.add"}

    g = group(project.app.signature("ctdjango.add", (1, 1), queue="djjson"),
              project.app.signature("ctdjango.fail", ("g",), queue="djjson")).apply_async()
    project.wait_done(project.send("json", "save_group", g.id, [c.id for c in g.results]), *g.results)
    r = run("result", g.id, "-o", "json", "--backend", project.url)
    assert r.exit_code == 1, r
    out, = r.json()  # one id: still an array
    assert out["group"] is True and out["children"] == [c.id for c in g.results]
    assert out["result"] == {"tasks": {g.results[0].id: "SUCCESS", g.results[1].id: "FAILURE"}}


def test_django_db_alone_explains_the_spelling(run):
    r = run("result", "x", "--backend", "django-db")
    assert r.exit_code == 2 and "django-db+postgresql://" in r.stderr, r


def test_failures_on_django_celery_results(run, project):
    bad = [project.send("json", "fail", f"disk {n} full") for n in (1, 2, 3)]
    project.wait_done(*bad)
    r = run("failures", "--task", "ctdjango.fail", "-o", "json", "--ids", "--backend", project.url)
    assert r.exit_code == 1, r
    groups = {g["message"]: g for g in r.json()}
    assert sorted(groups["disk # full, 42"]["ids"]) == sorted(b.id for b in bad)
    assert groups["disk # full, 42"]["exception"] == "CustomError"
