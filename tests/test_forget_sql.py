"""celerytool forget on Celery's database backend (PostgreSQL, MariaDB, SQLite): exactly the
selected rows go, in batches; expire says it is Redis's."""

from __future__ import annotations

import pytest

from conftest import make_app
from sqlservices import new_database

# two hours ago in naive UTC, as Celery stores date_done
OLD = {"postgresql": "(now() at time zone 'utc') - interval '2 hours'",
       "mysql": "UTC_TIMESTAMP() - INTERVAL 2 HOUR",
       "sqlite": "datetime('now', '-2 hours')"}


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def stored(request, tmp_path):
    """Results stored by Celery's own database backend; some aged by 2 hours afterwards."""
    from celery.app.task import Context

    db = new_database(request.param, str(tmp_path))
    app = make_app("memory://", backend="db+" + db.driver_url, result_extended=True)
    try:
        def store(task_id, state, name, result):
            request_ = Context(id=task_id, task=name, args=[1], kwargs={}, hostname="w1", retries=0,
                               delivery_info={"routing_key": "celery"})
            app.backend.store_result(task_id, result, state, request=request_)

        for i in range(6):
            store(f"so-{i}", "SUCCESS", "tasks.a", i)
        for i in range(3):
            store(f"sn-{i}", "SUCCESS", "tasks.a", i)
        for i in range(4):
            store(f"fo-{i}", "FAILURE", "tasks.b", ValueError("x"))
        store("sb-0", "SUCCESS", "tasks.b", 0)
        app.backend.save_group("grp-1", app.GroupResult("grp-1", [app.AsyncResult("so-0")]))
        sql(db, f"UPDATE celery_taskmeta SET date_done = {OLD[request.param]} "
                "WHERE task_id LIKE 'so-%' OR task_id LIKE 'fo-%' OR task_id = 'sb-0'")
        yield db, "db+" + db.driver_url
    finally:
        app.close()
        db.drop()


def sql(db, statement):
    import sqlalchemy as sa

    engine = db.engine()
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


def ids(db):
    return {r[0] for r in sql(db, "SELECT task_id FROM celery_taskmeta")}


def test_forget_success_older_than_on_a_database(run, stored):
    db, url = stored
    before = ids(db)
    expected = {f"so-{i}" for i in range(6)} | {"sb-0"}
    r = run("forget", "--status", "SUCCESS", "--older-than", "1h", "--dry-run", "-o", "json", "--backend", url)
    assert r.exit_code == 0, r
    assert r.json()["matched"] == 7 and ids(db) == before
    r = run("forget", "--status", "SUCCESS", "--older-than", "1h", "--yes", "-o", "json", "--backend", url)
    assert r.exit_code == 0, r
    assert r.json()["deleted"] == 7
    assert before - ids(db) == expected
    assert sql(db, "SELECT count(*) FROM celery_tasksetmeta")[0][0] == 1  # groups are not tasks


def test_forget_task_glob_ids_and_groups(run, stored):
    db, url = stored
    r = run("forget", "--task", "tasks.[b]", "--older-than", "1h", "-y", "-o", "json", "--backend", url)
    assert r.json()["deleted"] == 5, r  # a glob LIKE narrows and Python matches exactly
    assert not any(i.startswith("fo-") or i == "sb-0" for i in ids(db))
    r = run("forget", "sn-0", "grp-1", "nope", "-y", "-o", "json", "--backend", url)
    assert r.json()["deleted"] == 2, r
    assert "sn-0" not in ids(db) and sql(db, "SELECT count(*) FROM celery_tasksetmeta")[0][0] == 0


def test_expire_is_redis_only(run, stored):
    _, url = stored
    r = run("expire", "--ttl", "1d", "--all", "-y", "--backend", url)
    assert r.exit_code == 2 and "forget --older-than" in r.stderr
