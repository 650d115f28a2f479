"""Every command gives up within its documented timeouts against a server that never answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from timing import within

from services import RABBIT_HOST

ROOT = Path(__file__).resolve().parent.parent


def celerytool(*args, timeout=90):
    """The real CLI in a subprocess: a hang ends in TimeoutExpired, not a stuck suite."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=env)
    return r, time.monotonic() - started


@pytest.fixture
def silent_port():
    """A TCP listener that accepts every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


# interpreter start-up included; before the fix: result 60 s, peek 10 s, send 41 s
@pytest.mark.parametrize("command, bound", [
    (("result", "0f0f0f0f-0000-0000-0000-000000000000"), 6),
    (("results",), 6),
    (("peek", "celery"), 6),
    (("queues",), 6),
    (("purge", "celery", "--task", "x", "-y"), 6),
    (("send", "tasks.add", "1"), 12),  # 4 attempts (--retry-max 3) of 1 s, plus 0.6 s of intervals
])
def test_redis_commands_give_up_within_the_connect_timeout(silent_port, command, bound):
    r, took = celerytool(*command, "--connect-timeout", "1", "-b", f"redis://127.0.0.1:{silent_port}/0")
    assert r.returncode == 69, r
    assert "cannot reach" in r.stderr and "Traceback" not in r.stderr
    assert took < bound, (command, took)


def test_result_backend_url_gives_up_too(silent_port):
    r, took = celerytool("result", "abc", "--connect-timeout", "1",
                         "--backend", f"redis://127.0.0.1:{silent_port}/1", "-b", "redis://127.0.0.1:1/0")
    assert r.returncode == 69 and took < within(6), (r, took)


@pytest.mark.parametrize("command", [("peek", "celery"), ("queues",), ("bindings",)])
def test_amqp_commands_give_up_within_the_connect_timeout(silent_port, command):
    r, took = celerytool(*command, "--connect-timeout", "1", "-b", f"amqp://guest:guest@127.0.0.1:{silent_port}//")
    assert r.returncode == 69, r
    assert "cannot reach RabbitMQ" in r.stderr
    assert took < within(6), (command, took)


def test_amqp_port_that_does_not_answer_is_unreachable_although_the_api_does(rabbit_vhost):
    """The management API on the same host answers; the broker itself does not: exit 69, not 'no queues'."""
    r, _ = celerytool("queues", "-b", "amqp://guest:guest@127.0.0.1:1//")
    assert r.returncode == 69, r
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1//" in r.stderr or \
        "cannot reach RabbitMQ at amqp://***:***@127.0.0.1:1//" in r.stderr, r.stderr
    assert "no queues" not in r.stderr


def test_amqps_listing_needs_the_tls_handshake_to_answer(rabbit_vhost, silent_port):
    """amqps:// to a port that accepts and stays silent, or that speaks plain AMQP: exit 69, not the API's list."""
    for host, port in (("127.0.0.1", silent_port), (RABBIT_HOST, rabbit_vhost.node.amqp_port)):
        r, took = celerytool("queues", "--connect-timeout", "1",
                             "-b", f"amqps://guest:guest@{host}:{port}//?ssl_cert_reqs=CERT_NONE")
        assert r.returncode == 69, r
        assert "cannot reach RabbitMQ" in r.stderr and took < within(6), (r, took)


@pytest.mark.parametrize("scheme", ["db+mysql", "db+postgresql"])
def test_sql_result_backends_give_up_within_the_connect_timeout(silent_port, scheme):
    """Before: `result` on db+mysql waited for the server's greeting for ever."""
    for command in (("result", "0f0f0f0f-0000-0000-0000-000000000000"), ("results",)):
        r, took = celerytool(*command, "--connect-timeout", "1",
                             "--backend", f"{scheme}://u:pw@127.0.0.1:{silent_port}/x", timeout=60)
        assert r.returncode == 69, r
        assert "cannot reach" in r.stderr and took < within(8), (command, took)  # libpq waits 2 s at least


def test_mysql_replies_after_the_greeting_get_the_reply_timeout():
    """The greeting is bounded by --connect-timeout; later replies by the reply timeout (not for ever)."""
    from celerytool.backends.celerydb import celery_layout
    from celerytool.backends.sql import SqlResultBackend
    from celerytool.urls import parse_url

    from sqlservices import new_database

    db = new_database("mysql")
    try:
        backend = SqlResultBackend(parse_url("db+" + db.url()), celery_layout({}), connect_timeout=1)
        raw = backend.conn.connection.dbapi_connection
        assert (raw._read_timeout, raw._write_timeout) == (10.0, 10.0)
        backend.conn.close()
    finally:
        db.drop()
