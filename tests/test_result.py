"""celerytool result / results: what Celery's Redis backend stored, live --wait, exit codes."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from timing import within

from conftest import clean_db_url, make_app
from services import free_port, wait_for
from workers import worker_on_db

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def worker(redis_server, tmp_path_factory):
    with worker_on_db(redis_server, tmp_path_factory, 1) as w:
        yield w


@pytest.fixture(scope="module")
def wapp(worker):
    from celery import Celery

    app = Celery(broker=worker.broker_url, backend=worker.broker_url, set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def url3(redis_server):
    return clean_db_url(redis_server, 3)




# -- with a real worker -------------------------------------------------------------------------
def test_success_with_extended_fields(run, worker, wapp):
    res = wapp.send_task("worker_tasks.add", (2, 3))
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", "-b", worker.broker_url)
    assert r.exit_code == 0, r
    out, = r.json()  # one id: still an array
    assert out["id"] == res.id and out["status"] == "SUCCESS" and out["result"] == 5
    assert out["traceback"] is None and out["children"] == [] and out["date_done"]
    assert out["name"] == "worker_tasks.add" and out["args"] == [2, 3] and out["kwargs"] == {}
    assert out["worker"] == worker.name and out["retries"] == 0 and out["queue"] == "celery"
    assert res.get(timeout=5) == 5  # Celery agrees


def test_failure_shows_exception_and_traceback(run, worker, wapp):
    res = wapp.send_task("worker_tasks.fail", ("bad",))
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", "-b", worker.broker_url)
    assert r.exit_code == 1, r
    out, = r.json()  # one id: still an array
    assert out["status"] == "FAILURE"
    assert out["exception"] == {"type": "CustomError", "module": "worker_tasks", "message": "bad, 42"}
    assert "CustomError" in out["traceback"]
    r = run("result", res.id, "-b", worker.broker_url)  # table form: the traceback is readable
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stdout and "worker_tasks.CustomError: bad, 42" in r.stdout


def test_revoked(run, worker, wapp):
    task_id = str(uuid.uuid4())
    # reply=True: returns once the worker has the id in its revoked set, before the task exists
    assert wapp.control.revoke(task_id, reply=True, timeout=10, destination=[worker.name])
    wapp.send_task("worker_tasks.add", (1, 1), task_id=task_id)
    r = run("result", task_id, "--wait", "--timeout", "30", "-o", "json", "-b", worker.broker_url)
    assert r.exit_code == 1, r
    assert r.json()[0]["status"] == "REVOKED"
    assert r.json()[0]["exception"]["message"] == "revoked"


def test_progress_state_then_wait(run, worker, wapp):
    go_key = f"ct:go:{uuid.uuid4()}"
    res = wapp.send_task("worker_tasks.progress", (go_key,))
    wait_for(lambda: wapp.backend.get_task_meta(res.id)["status"] == "PROGRESS")
    r = run("result", res.id, "-o", "json", "-b", worker.broker_url)
    assert r.exit_code == 3, r
    assert r.json()[0]["status"] == "PROGRESS" and r.json()[0]["result"] == {"p": 40}

    timer = threading.Timer(0.5, lambda: wapp.backend.client.set(go_key, 1))
    timer.start()
    r = run("result", res.id, "--wait", "--timeout", "30", "-o", "json", "-b", worker.broker_url)
    timer.join()
    assert r.exit_code == 0, r
    assert r.json()[0]["result"] == "done"
    assert f"{res.id}: PROGRESS" in r.stderr and '"p":40' in r.stderr


def test_wait_timeout_and_not_ready(run, worker):
    started = time.monotonic()
    r = run("result", "never-sent", "--wait", "--timeout", "0.5", "-b", worker.broker_url)
    assert r.exit_code == 124, r
    assert time.monotonic() - started < within(5)
    assert "timed out" in r.stderr
    r = run("result", "never-sent", "-o", "json", "-b", worker.broker_url)
    assert r.exit_code == 3 and r.json()[0]["status"] == "PENDING"


def test_worst_of_several_ids_decides(run, worker, wapp):
    ok = wapp.send_task("worker_tasks.add", (1, 2))
    bad = wapp.send_task("worker_tasks.fail")
    ok.get(timeout=30)
    bad.get(timeout=30, propagate=False)
    assert bad.status == "FAILURE"
    url = worker.broker_url
    assert run("result", ok.id, "-b", url).exit_code == 0
    table = run("result", ok.id, "never-sent", "-b", url)
    assert table.exit_code == 3
    # a PENDING row has no result to show (not "null"), as `result never-sent` shows none
    assert [line.split()[1:] for line in table.stdout.splitlines()[1:]][1] == ["PENDING"], table
    r = run("result", ok.id, bad.id, "never-sent", "-o", "json", "-b", url)
    assert r.exit_code == 1
    assert [x["status"] for x in r.json()] == ["SUCCESS", "FAILURE", "PENDING"]


# -- results Celery stored, read without a worker ------------------------------------------------
@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack", "yaml"])
@pytest.mark.parametrize("compression", [None, "zlib", "bzip2"])
def test_every_result_encoding(run, url3, serializer, compression):
    conf = {"result_serializer": serializer}
    if compression:
        conf["result_compression"] = compression
    app = make_app(url3, **conf)
    app.backend.store_result("ok", {"a": [1, "é"]}, "SUCCESS")
    app.backend.mark_as_failure("bad", ValueError("bad", 42), traceback="Traceback: here")
    raw = app.backend.client.get("celery-task-meta-ok")
    assert raw.startswith(b"\x00celery-compressed\x00") == bool(compression)
    app.close()
    r = run("result", "ok", "bad", "-o", "json", "-b", url3)
    assert r.exit_code == 1, r
    ok, bad = r.json()
    assert ok["status"] == "SUCCESS" and ok["result"] == {"a": [1, "é"]}
    assert bad["status"] == "FAILURE" and bad["traceback"] == "Traceback: here"
    assert bad["exception"] == {"type": "ValueError", "module": "builtins", "message": "bad, 42"}


def test_group_result(run, url3):
    from celery.result import AsyncResult, GroupResult

    app = make_app(url3)
    GroupResult("g1", [AsyncResult("c1", app=app), AsyncResult("c2", app=app)], app=app).save(backend=app.backend)
    app.backend.store_result("c1", 1, "SUCCESS")
    r = run("result", "g1", "-o", "json", "-b", url3)
    assert r.exit_code == 3 and r.json()[0]["group"] is True and r.json()[0]["children"] == ["c1", "c2"], r
    app.backend.store_result("c2", 2, "SUCCESS")
    assert run("result", "g1", "-b", url3).exit_code == 0
    GroupResult("g2", [AsyncResult("c1", app=app), AsyncResult("c3", app=app)], app=app).save(backend=app.backend)
    app.backend.mark_as_failure("c3", ValueError("x"))
    r = run("result", "g2", "-o", "json", "-b", url3)
    assert r.exit_code == 1 and r.json()[0]["status"] == "FAILURE", r
    app.close()


def test_results_lists_newest_first_with_filters(run, url3):
    from celery.app.task import Context

    app = make_app(url3, result_extended=True)
    now = dt.datetime.now(UTC)

    def store(task_id, name, state, age_s):
        app.now = lambda: now - dt.timedelta(seconds=age_s)
        req = Context(id=task_id, task=name, args=[1], kwargs={}, hostname="w@x", retries=0,
                      delivery_info={"routing_key": "celery"})
        if state == "FAILURE":
            app.backend.mark_as_failure(task_id, ValueError(task_id), request=req)
        else:
            app.backend.store_result(task_id, task_id, state, request=req)

    store("old-fail", "billing.charge", "FAILURE", 7200)
    store("new-fail", "billing.refund", "FAILURE", 60)
    store("mid-ok", "billing.charge", "SUCCESS", 600)
    store("new-ok", "mail.send", "SUCCESS", 10)
    app.close()

    r = run("results", "-o", "json", "-b", url3)
    assert r.exit_code == 0, r
    assert [x["id"] for x in r.json()] == ["new-ok", "new-fail", "mid-ok", "old-fail"]
    r = run("results", "--status", "failure", "--since", "1h", "-o", "json", "-b", url3)
    assert [x["id"] for x in r.json()] == ["new-fail"]
    r = run("results", "--task", "billing.*", "-n", "2", "-o", "json", "-b", url3)
    assert [x["id"] for x in r.json()] == ["new-fail", "mid-ok"]
    r = run("results", "--task", "mail.*", "--task", "billing.refund", "-o", "json", "-b", url3)  # any of them
    assert [x["id"] for x in r.json()] == ["new-ok", "new-fail"]
    r = run("results", "--status", "FAILURE", "-b", url3)
    assert "new-fail" in r.stdout and "ValueError" in r.stdout and "mid-ok" not in r.stdout


def test_rpc_backend_is_a_usage_error(run, url3):
    r = run("result", "x", "--backend", "rpc://", "-b", url3)
    assert r.exit_code == 2 and "cannot be read after the fact" in r.stderr, r


def test_unreachable_backend_exit_69(run):
    r = run("result", "x", "-b", f"redis://127.0.0.1:{free_port()}/0")
    assert r.exit_code == 69 and "cannot reach" in r.stderr, r


def test_help_documents_exit_codes(run):
    r = run("result", "--help")
    assert r.exit_code == 0
    for code in ("0    SUCCESS", "1    FAILURE or REVOKED", "3    not ready", "124", "69", "2    usage"):
        assert code in r.stdout
    assert "Examples:" in run("send", "--help").stdout


# -- the built-in RESP client: password, database, TLS --------------------------------------------
def test_password_and_db(run, tmp_path):
    from services import start_redis

    server = start_redis(tmp_path / "auth", extra=("--requirepass", "s3cret"))
    try:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/5"
        app = make_app(url)
        app.backend.store_result("p1", 7, "SUCCESS")
        app.close()
        r = run("result", "p1", "-o", "json", "-b", url)
        assert r.exit_code == 0 and r.json()[0]["result"] == 7, r
        r = run("result", "p1", "-b", f"redis://:wrong@127.0.0.1:{server.port}/5")
        assert r.exit_code == 69 and "wrong" not in r.stderr and "***" in r.stderr, r
    finally:
        server.stop()


def test_tls(run, tmp_path):
    import shutil
    import subprocess

    from services import start_redis

    if not shutil.which("openssl"):
        from services import apt_install

        apt_install("openssl")  # a fresh machine: installed, never skipped
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    tls_port = free_port()
    try:
        server = start_redis(tmp_path / "tls", extra=("--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                                                      "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
                                                      "--tls-auth-clients", "no"))
    except RuntimeError as exc:
        pytest.skip(f"redis-server without TLS: {exc}")
    try:
        app = make_app(server.url(0))
        app.backend.store_result("t1", "secure", "SUCCESS")
        app.close()
        base = f"rediss://127.0.0.1:{tls_port}/0?ssl_cert_reqs=required"
        r = run("result", "t1", "-o", "json", "-b", f"{base}&ssl_ca_certs={cert}")
        assert r.exit_code == 0 and r.json()[0]["result"] == "secure", r
        r = run("result", "t1", "-b", base)  # the self-signed certificate is not trusted
        assert r.exit_code == 69 and "certificate" in r.stderr.lower(), r
    finally:
        server.stop()
