"""URL forms against real servers: unix socket, TLS, db numbers, ACL users."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from services import apt_install, free_port, start_redis


def test_unix_socket_url(run, tmp_path):
    sock = tmp_path / "r.sock"
    server = start_redis(tmp_path / "sock", extra=("--unixsocket", str(sock), "--unixsocketperm", "700"))
    try:
        import redis

        redis.Redis(unix_socket_path=str(sock), db=2).lpush("q", b"not an envelope")
        r = run("peek", "q", "-b", f"redis+socket://{sock}?virtual_host=2", "-o", "json")
        assert r.exit_code == 0, r
        assert r.json()[0]["error"]
    finally:
        server.stop()


def test_db_number_and_acl_user(run, tmp_path):
    server = start_redis(tmp_path / "acl", extra=("--user", "ops", "on", ">opspw", "~*", "&*", "+@all"))
    try:
        import redis

        redis.Redis(port=server.port, db=5, username="ops", password="opspw").lpush("q", b"x")
        r = run("queues", "q", "-b", f"redis://ops:opspw@127.0.0.1:{server.port}/5", "-o", "json")
        assert r.json()[0]["messages"] == 1
        r = run("queues", "q", "-b", f"redis://ops:opspw@127.0.0.1:{server.port}/4", "-o", "json")
        assert r.json()[0]["messages"] == 0
    finally:
        server.stop()


def test_tls_url(run, tmp_path):
    if not shutil.which("openssl"):
        apt_install("openssl")  # a fresh machine: installed, never skipped
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    try:
        server = start_redis(tmp_path / "tls", port=port, extra=(
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"))
    except RuntimeError as exc:  # a redis-server built without TLS
        pytest.skip(f"redis-server without TLS: {exc}")
    try:
        r = run("queues", "q", "-b", f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=CERT_NONE", "-o", "json")
        assert r.exit_code == 0, r
        r = run("queues", "q", "-b", f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}",
                "-o", "json")
        assert r.exit_code == 0, r
        r = run("queues", "q", "-b", f"redis://127.0.0.1:{port}/0", "--connect-timeout", "1")
        assert r.exit_code == 69
    finally:
        server.stop()
