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
