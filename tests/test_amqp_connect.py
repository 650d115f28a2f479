"""RabbitMQ connections: failures are one line and exit 69; failover, vhosts, TLS options."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from services import RABBIT_HOST, free_port

ROOT = Path(__file__).resolve().parent.parent


def celerytool(*args, timeout=30):
    """Run the real CLI in a subprocess (for timeouts: nothing in-process can hang the suite)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("celerytool: error: ")
    return lines[0]


def test_wrong_password_is_a_clear_authentication_error(rabbit_vhost, run):
    url = rabbit_vhost.url(password="not-the-password")
    r = run("peek", "celery", "-b", url)
    assert r.exit_code == 69, r
    line = one_line_error(r.stderr)
    assert "authentication failed for user 'guest'" in line
    assert "not-the-password" not in r.stderr + r.stdout


def test_wrong_password_on_queues_also_fails_cleanly(rabbit_vhost, run):
    """The management API refuses too, the passive-declare fallback then meets the AMQP refusal."""
    r = run("queues", "-b", rabbit_vhost.url(password="nope-nope"))
    assert r.exit_code == 69, r
    assert "authentication failed" in one_line_error(r.stderr)
    assert "nope-nope" not in r.stderr


def test_refused_port_gives_exit_69():
    port = free_port()
    r = celerytool("peek", "celery", "-b", f"amqp://guest:secret@127.0.0.1:{port}//")
    assert r.returncode == 69, r
    line = one_line_error(r.stderr)
    assert f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{port}//" in line
    assert "secret" not in r.stderr


def test_silent_server_times_out_with_exit_69():
    """A host that accepts TCP but never speaks AMQP: the handshake timeout ends it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        r = celerytool("peek", "celery", "--connect-timeout", "1", "-b", f"amqp://127.0.0.1:{port}//",
                       timeout=20)
    assert r.returncode == 69, r
    assert "cannot reach RabbitMQ" in one_line_error(r.stderr)


def test_failover_tries_hosts_in_order(rabbit_vhost, pika_channel, run):
    pika_channel.queue_declare("fo", durable=True)
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{rabbit_vhost.quoted}"
    r = run("peek", "fo", "-b", f"{dead};{rabbit_vhost.url()}")
    assert r.exit_code == 0, r
    assert "empty" in r.stderr


def test_failover_reports_every_host_when_all_fail():
    a, b = free_port(), free_port()
    r = celerytool("peek", "celery", "-b", f"amqp://127.0.0.1:{a}//;amqp://127.0.0.1:{b}//")
    assert r.returncode == 69, r
    line = one_line_error(r.stderr)
    assert f"127.0.0.1:{a}" in line and f"127.0.0.1:{b}" in line


def test_unknown_vhost_is_reported(run, rabbit_node):
    r = run("peek", "celery", "-b", f"amqp://guest:guest@{RABBIT_HOST}:{rabbit_node.amqp_port}/no-such-vhost-celerytool")
    assert r.exit_code == 69, r
    assert "vhost 'no-such-vhost-celerytool'" in one_line_error(r.stderr)


def test_percent_2f_is_the_root_vhost(run, rabbit_node):
    """Read-only: a passive declare of a queue that does not exist on vhost '/'."""
    r = run("peek", "celerytool-no-such-queue-4f1c", "-b",
            f"amqp://guest:guest@{RABBIT_HOST}:{rabbit_node.amqp_port}/%2F")
    assert r.exit_code == 66, r
    assert "vhost '/'" in one_line_error(r.stderr)


def test_amqps_speaks_tls(run, rabbit_node):
    """amqps:// really starts a TLS handshake: against the plain AMQP port it fails cleanly."""
    r = run("peek", "celery", "--connect-timeout", "2", "-b",
            f"amqps://guest:guest@{RABBIT_HOST}:{rabbit_node.amqp_port}//?ssl_cert_reqs=CERT_NONE")
    assert r.exit_code == 69, r
    one_line_error(r.stderr)


def test_tls_options_from_the_query():
    from celerytool.clients.amqp import parameters
    from celerytool.urls import parse_url

    params = parameters(parse_url("amqps://u:p@rabbit.example:5671/v?ssl_cert_reqs=CERT_NONE&heartbeat=7"), 3.0)
    assert params.ssl_options.context.verify_mode == ssl.CERT_NONE
    assert params.ssl_options.context.check_hostname is False
    assert params.ssl_options.server_hostname == "rabbit.example"
    assert (params.port, params.virtual_host, params.heartbeat, params.socket_timeout) == (5671, "v", 7, 3.0)
    strict = parameters(parse_url("amqps://rabbit.example/"), 3.0)
    assert strict.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert strict.ssl_options.context.check_hostname is True
    assert parameters(parse_url("amqp://h/"), 3.0).ssl_options is None


def test_missing_ca_file_is_a_usage_error(run):
    r = run("peek", "celery", "-b", "amqps://h:5671//?ssl_ca_certs=/nonexistent/ca.pem")
    assert r.exit_code == 2, r
    assert "bad TLS options" in one_line_error(r.stderr)


@pytest.mark.parametrize("scheme", ["amqp", "pyamqp"])
def test_schemes(scheme, rabbit_vhost, pika_channel, run):
    pika_channel.queue_declare("schemes", durable=True)
    r = run("peek", "schemes", "-b", rabbit_vhost.url(scheme=scheme))
    assert r.exit_code == 0, r
