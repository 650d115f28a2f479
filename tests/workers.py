"""Start and stop a real ``celery -A worker_tasks worker -P solo`` against the private Redis."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    broker_url: str
    name: str
    ready: Path

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.exists():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, wait: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def launch_worker(broker_url: str, tmp: Path, queues: str = "celery", env: dict[str, str] | None = None,
                  app: str = "worker_tasks", cwd: Path = HERE, *, pool: str = "solo",
                  concurrency: int | None = None, events: bool = False, backend_url: str | None = None,
                  prefix: str = "ct", heartbeat: bool = False, extra: tuple[str, ...] = ()) -> Worker:
    """Start a worker without waiting for it (start several at once, then ``wait_ready`` each)."""
    tmp.mkdir(parents=True, exist_ok=True)
    ready = tmp / "ready"
    ready.unlink(missing_ok=True)
    log = tmp / "worker.log"
    name = f"{prefix}-{uuid.uuid4().hex[:8]}@localhost"
    full_env = {
        **os.environ,
        "C_FORCE_ROOT": "1",
        "CT_BROKER_URL": broker_url,
        "CT_READY_FILE": str(ready),
        "PYTHONPATH": os.pathsep.join([str(cwd), str(HERE), os.environ.get("PYTHONPATH", "")]),
        **({"CT_RESULT_BACKEND": backend_url} if backend_url else {}),
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", pool, "-Q", queues,
           "-n", name, "-l", "INFO", "--without-gossip", "--without-mingle"]
    if not heartbeat:  # with it, the worker has an event dispatcher even without -E
        cmd.append("--without-heartbeat")
    if concurrency:
        cmd += ["-c", str(concurrency)]
    if events:
        cmd.append("-E")
    cmd += list(extra)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=full_env)
    return Worker(proc, log, broker_url, name, ready)


def start_worker(broker_url: str, tmp: Path, queues: str = "celery", timeout: float = 60,
                 env: dict[str, str] | None = None, **options: Any) -> Worker:
    """``launch_worker`` (options: pool, concurrency, events, backend_url, ...), then wait until ready."""
    worker = launch_worker(broker_url, tmp, queues, env, **options)
    worker.wait_ready(timeout)
    return worker


@contextlib.contextmanager
def worker_on_db(redis_server: Any, tmp_path_factory: Any, db: int) -> Iterator[Worker]:
    """A worker on database ``db`` of the private redis-server, emptied first (a module's fixture)."""
    import redis

    redis.Redis(port=redis_server.port, db=db).flushdb()
    w = start_worker(redis_server.url(db), tmp_path_factory.mktemp(f"worker-db{db}"))
    try:
        yield w
    finally:
        w.stop()


@contextlib.contextmanager
def two_workers(tmp_path_factory: Any, name: str, a: dict[str, Any], b: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A private Redis with two real workers (``start_worker``'s options ``a`` and ``b``) and a
    Celery app on it: ``{"url", "a", "b", "app", "server"}``; all stopped afterwards."""
    from conftest import make_app
    from services import start_redis

    server = start_redis(tmp_path_factory.mktemp(f"{name}-redis"))
    url = server.url(0)
    tmp = tmp_path_factory.mktemp(f"{name}-workers")
    started = []
    try:
        started.append(start_worker(url, tmp / "a", **a))
        started.append(start_worker(url, tmp / "b", **b))
        app = make_app(url)
        yield {"url": url, "a": started[0], "b": started[1], "app": app, "server": server}
        app.close()
    finally:
        for w in started:
            w.stop(wait=5)
        server.stop()


class EventListener:
    """Tells when a ``celerytool events``/``top`` started after it is really subscribed.

    kombu binds the event queue (``_kombu.binding.celeryev``) before it PSUBSCRIBEs, which it
    does on its first poll; an event published in between is lost (Redis pub/sub keeps
    nothing). Ready means: our binding is there and a Redis client that was not
    pattern-subscribed when this object was made now is.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.before = self._subscribed()

    def _subscribed(self) -> set[str]:
        return {str(c["id"]) for c in self.client.client_list() if int(c.get("psub", 0) or 0) > 0}

    def ready(self) -> bool:
        bound = any(b"celerytool" in row for row in self.client.smembers("_kombu.binding.celeryev"))
        return bound and bool(self._subscribed() - self.before)
