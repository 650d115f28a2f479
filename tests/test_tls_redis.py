"""A real TLS Redis with a self-signed CA (issue 16, item 5): the certificate names only
``redis.test``, so connecting to 127.0.0.1 verifies only with ``server_hostname=redis.test``.
Every path (our redis-py client, kombu's for the live commands, send) verifies that name; a
real Celery worker on the same TLS Redis is seen and runs what ``send`` sent over TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from services import free_port, start_redis
from tlsfront import NAME, make_certs
from workers import start_worker


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    make_certs(d / "certs")
    port = free_port()
    certs = d / "certs"
    # --port P then --port 0: no plain port, TLS on P
    server = start_redis(d / "data", port, extra=(
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs / "server.pem"),
        "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.pem"),
        "--tls-auth-clients", "no"))
    base = f"rediss://127.0.0.1:{port}/0"
    yield {"base": base, "ca": str(certs / "ca.pem"), "dir": d,
           "good": f"{base}?ssl_ca_certs={certs / 'ca.pem'}&server_hostname={NAME}",
           "wrong_name": f"{base}?ssl_ca_certs={certs / 'ca.pem'}"}
    server.stop()


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    return subprocess.run([sys.executable, "-m", "celerytool", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.mark.parametrize("args", [("queues",), ("workers", "-t", "1"), ("send", "worker_tasks.add", "1", "2"),
                                  ("events", "-n", "1", "--timeout", "1"), ("peek", "no-such-queue")],
                         ids=["queues", "workers", "send", "events", "peek"])
def test_the_certificate_name_is_verified_on_every_path(tls, args):
    wrong = run(*args, "-b", tls["wrong_name"], "--connect-timeout", "3")
    assert wrong.returncode == 69, (wrong.returncode, wrong.stderr)
    assert "CERTIFICATE_VERIFY_FAILED" in wrong.stderr and "Traceback" not in wrong.stderr
    right = run(*args, "-b", tls["good"], "--connect-timeout", "3")
    assert "CERTIFICATE_VERIFY_FAILED" not in right.stderr and "internal error" not in right.stderr, right.stderr
    # workers: none running (1); events: none within the timeout (124); peek: no such queue (66)
    assert right.returncode == {"workers": 1, "events": 124, "peek": 66}.get(args[0], 0), (right.returncode, right.stderr)


def test_a_real_worker_over_tls_is_seen_and_runs_what_send_sent(tls, tmp_path):
    # the worker verifies nothing (its own URL); celerytool verifies the name
    worker_url = f"{tls['base']}?ssl_cert_reqs=CERT_NONE"
    worker = start_worker(worker_url, tmp_path / "w", backend_url=worker_url)
    try:
        r = run("workers", "-b", tls["good"], "-o", "json", "-t", "5")
        assert r.returncode == 0, r.stderr
        assert worker.name in {w["name"] for w in json.loads(r.stdout)}
        sent = run("send", "worker_tasks.add", "20", "22", "-b", tls["good"])
        assert sent.returncode == 0, sent.stderr
        task_id = sent.stdout.strip()
        got = run("result", task_id, "--wait", "--timeout", "30", "-o", "json", "-b", tls["good"])
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)[0]["result"] == 42
    finally:
        worker.stop()
