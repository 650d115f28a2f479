"""Fake Sentinel answers (issue 16, item 5): a malformed master address, a sentinel that accepts
connections and never answers, a URL without a master name; every command ends within its
bounds with its documented exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest


class FakeSentinel(threading.Thread):
    """A TCP server speaking just enough RESP: ``answer`` is the raw reply to any command, or
    None to accept and never answer."""

    def __init__(self, answer: bytes | None) -> None:
        super().__init__(daemon=True)
        self.answer = answer
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.answer is not None:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                conn.sendall(self.answer)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def fake_sentinel():
    started = []

    def start(answer):
        s = FakeSentinel(answer)
        s.start()
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def cli(*args, timeout=30):
    """The deadline is the test: with --connect-timeout 2 every command must be done well before."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_MASTER_NAME")}
    return subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], env=env, text=True,
                          capture_output=True, timeout=timeout)


COMMANDS = [("workers",), ("inspect", "active"), ("events", "-n", "1"), ("top", "--once", "-o", "json"),
            ("queues",), ("peek", "celery"), ("purge", "celery", "--dry-run")]
IDS = [c[0] if c[0] != "inspect" else "inspect" for c in COMMANDS]


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_malformed_master_address_is_69_naming_it(fake_sentinel, args):
    s = fake_sentinel(b"*2\r\n$9\r\n127.0.0.1\r\n$12\r\nport99999999\r\n")
    r = cli(*args, "-b", f"sentinel://127.0.0.1:{s.port}/0?master_name=m", "--connect-timeout", "2")
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "malformed answer" in r.stderr and "port99999999" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_silent_sentinel_is_69_within_the_connect_timeout(fake_sentinel, args):
    s = fake_sentinel(None)
    r = cli(*args, "-b", f"sentinel://127.0.0.1:{s.port}/0?master_name=m", "--connect-timeout", "2",
            timeout=20)
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "timed out" in r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_no_master_name_is_a_usage_error_everywhere(fake_sentinel, args):
    s = fake_sentinel(None)
    r = cli(*args, "-b", f"sentinel://127.0.0.1:{s.port}/0", "--connect-timeout", "2")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "needs the master's name" in r.stderr
