"""rediss:// to a plain Redis (issue 16, item 5): the TLS handshake that never completes is
bounded by --connect-timeout on the live commands too (kombu's own connection waited for good)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [("workers",), ("events", "-n", "1"), ("inspect", "active"),
                                  ("top", "--once", "-o", "json"), ("queues",)],
                         ids=["workers", "events", "inspect", "top", "queues"])
def test_rediss_to_a_plain_redis_is_69_within_the_connect_timeout(redis_server, args):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    url = f"rediss://127.0.0.1:{redis_server.port}/0?ssl_cert_reqs=none"
    # the deadline is the test: with --connect-timeout 2, well before 20 s
    r = subprocess.run([sys.executable, "-m", "celerytool", *args, "-b", url, "--connect-timeout", "2"],
                       env=env, text=True, capture_output=True, timeout=20)
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "cannot reach Redis broker" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("query", ["ssl_cert_reqs=bogus", "ssl_ca_certs=/nonexistent/ca.pem"],
                         ids=["bogus-cert-reqs", "missing-ca-file"])
@pytest.mark.parametrize("command", ["workers", "queues"])
def test_bad_tls_options_are_usage_errors_in_every_command(redis_server, query, command):
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    url = f"rediss://127.0.0.1:{redis_server.port}/0?{query}"
    r = subprocess.run([sys.executable, "-m", "celerytool", command, "-b", url, "--connect-timeout", "2"],
                       env=env, text=True, capture_output=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
