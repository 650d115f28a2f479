"""Start and stop a real ``celery -A worker_tasks worker -P solo`` against the private Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    broker_url: str
    name: str

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


def start_worker(broker_url: str, tmp: Path, queues: str = "celery", timeout: float = 60, *,
                 pool: str = "solo", concurrency: int | None = None, events: bool = False,
                 backend_url: str | None = None, prefix: str = "ct", heartbeat: bool = False,
                 extra: tuple[str, ...] = ()) -> Worker:
    tmp.mkdir(parents=True, exist_ok=True)
    ready = tmp / "ready"
    ready.unlink(missing_ok=True)
    log = tmp / "worker.log"
    name = f"{prefix}-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "C_FORCE_ROOT": "1",
        "CT_BROKER_URL": broker_url,
        "CT_READY_FILE": str(ready),
        "CT_BACKEND_URL": backend_url or broker_url,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "celery", "-A", "worker_tasks", "worker", "-P", pool, "-Q", queues,
           "-n", name, "-l", "INFO", "--without-gossip", "--without-mingle"]
    if not heartbeat:  # with it, the worker has an event dispatcher even without -E
        cmd.append("--without-heartbeat")
    if concurrency:
        cmd += ["-c", str(concurrency)]
    if events:
        cmd.append("-E")
    cmd += list(extra)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=fh, stderr=subprocess.STDOUT, env=env)
    worker = Worker(proc, log, broker_url, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists():
            return worker
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited ({proc.returncode}):\n{worker.log_tail()}")
        time.sleep(0.05)
    worker.stop()
    raise RuntimeError(f"celery worker not ready after {timeout} s:\n{worker.log_tail()}")
