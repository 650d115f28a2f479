"""Start the real services the tests need: a private redis-server, RabbitMQ.

Nothing here touches data the tests did not create: Redis runs on a free
port with its own data directory; RabbitMQ tests get their own vhost.
Missing servers are installed with apt-get when we are root (CI, a fresh
Debian machine).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_apt_updated = False


def apt_install(*packages: str) -> None:
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{packages} missing and cannot apt-get install (not root / no apt)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
        _apt_updated = True
    subprocess.run(["apt-get", "install", "-y", "-q", *packages], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    dir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def redis_server_binary() -> str:
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if path is None:
        apt_install("redis-server")
        path = shutil.which("redis-server") or "/usr/bin/redis-server"
    return path


def start_redis(data_dir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> RedisServer:
    binary = redis_server_binary()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return RedisServer(port, proc, data_dir)
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(data_dir / 'redis.log').read_text()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start in 20 s")


# --- RabbitMQ -------------------------------------------------------------------------

RABBIT_HOST = "127.0.0.1"
RABBIT_PORT = 5672
RABBIT_MGMT_PORT = 15672


def wait_port(host: str, port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on {host}:{port} within {seconds:.0f} s")


def ensure_rabbitmq() -> None:
    """Make sure RabbitMQ and its management plugin answer on 127.0.0.1 (start / install them)."""
    if not port_open(RABBIT_HOST, RABBIT_PORT):
        if not shutil.which("rabbitmq-server") and not os.path.exists("/usr/sbin/rabbitmq-server"):
            apt_install("rabbitmq-server")
        if not port_open(RABBIT_HOST, RABBIT_PORT):  # the package may have started it
            subprocess.run(["rabbitmq-plugins", "enable", "--offline", "rabbitmq_management"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run(["rabbitmq-server", "-detached"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(RABBIT_HOST, RABBIT_PORT, 120, "rabbitmq-server")
    if not port_open(RABBIT_HOST, RABBIT_MGMT_PORT):
        subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(RABBIT_HOST, RABBIT_MGMT_PORT, 60, "RabbitMQ management API")


def rabbit_api(method: str, path: str, body: object = None, user: str = "guest",
               password: str = "guest") -> object:
    """Call the management API directly (test set-up; independent of celerytool's client)."""
    import base64
    import json
    import urllib.request

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(
        f"http://{RABBIT_HOST}:{RABBIT_MGMT_PORT}/api{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


@dataclass
class RabbitVhost:
    """A vhost of our own on the shared RabbitMQ, where guest may do anything."""

    name: str

    @property
    def quoted(self) -> str:
        from urllib.parse import quote

        return quote(self.name, safe="")

    def url(self, user: str = "guest", password: str = "guest", scheme: str = "amqp") -> str:
        return f"{scheme}://{user}:{password}@{RABBIT_HOST}:{RABBIT_PORT}/{self.quoted}"

    def create(self) -> RabbitVhost:
        rabbit_api("PUT", f"/vhosts/{self.quoted}", {})
        rabbit_api("PUT", f"/permissions/{self.quoted}/guest",
                   {"configure": ".*", "write": ".*", "read": ".*"})
        return self

    def delete(self) -> None:
        try:
            rabbit_api("DELETE", f"/vhosts/{self.quoted}")
        except Exception:  # already gone
            pass

    def queue_names(self) -> list[str]:
        rows = rabbit_api("GET", f"/queues/{self.quoted}?columns=name")
        return [r["name"] for r in rows]  # type: ignore[union-attr]

    def delete_queues(self) -> None:
        from urllib.parse import quote

        for name in self.queue_names():
            rabbit_api("DELETE", f"/queues/{self.quoted}/{quote(name, safe='')}")


def new_vhost(prefix: str = "celerytool-test") -> RabbitVhost:
    import uuid

    ensure_rabbitmq()
    return RabbitVhost(f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}").create()


def wait_for(check, timeout: float = 20.0, every: float = 0.1):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s (last value {last!r})")
