"""For the metrics tests: a served ``celerytool metrics`` subprocess, scrapes parsed by
prometheus_client's own parser, ``promtool check metrics``, a real Prometheus server,
and a generator that publishes events as Celery's own EventDispatcher does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from services import apt_install, free_port, port_open, wait_for


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} from prometheus_client's parser (fails on bad text)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(samples: dict, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def total(samples: dict, metric: str, /, **labels: str) -> float:
    """Sum of ``metric`` over the series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == metric and want <= set(ls))


def series(samples: dict, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls) in samples if n == name]


def promtool_check(text: str) -> None:
    if not shutil.which("promtool"):
        apt_install("prometheus")
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()[-3000:]


@dataclass
class Served:
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str = "/metrics") -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def scrape(self) -> dict:
        status, text = self.get()
        assert status == 200, text
        return parse(text)

    def text(self) -> str:
        return self.get()[1]

    def rss(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the server in bytes."""
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def serve(broker: str, tmp: Path, *args: str) -> Served:
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / f"metrics-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "celerytool", "metrics", "-b", broker,
                                 "--serve", f"127.0.0.1:{port}", *args],
                                stdout=fh, stderr=subprocess.STDOUT, env=env)
    served = Served(proc, port, log)

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"metrics --serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        return port_open("127.0.0.1", port)

    wait_for(up, timeout=30)
    return served


# --- a real Prometheus server --------------------------------------------------------------

@dataclass
class Prometheus:
    proc: subprocess.Popen
    port: int
    log: Path

    def query(self, expr: str) -> list[dict]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_prometheus(target_port: int, tmp: Path) -> Prometheus:
    if not shutil.which("prometheus"):
        apt_install("prometheus")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: celerytool\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n")
    log = tmp / "prometheus.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
                                stdout=fh, stderr=subprocess.STDOUT)

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_for(ready, timeout=60, every=0.3)
    return Prometheus(proc, port, log)


# --- events as Celery publishes them ------------------------------------------------------

class EventGenerator:
    """Task events through Celery's own ``EventDispatcher`` (the celeryev fanout exchange)."""

    def __init__(self, broker: str, hostname: str = "gen@bench") -> None:
        from celery import Celery

        self.app = Celery("eventgen", broker=broker, set_as_current=False)
        self.conn = self.app.connection_for_write()
        self.dispatcher = self.app.events.Dispatcher(self.conn, hostname=hostname, enabled=True,
                                                     buffer_while_offline=False)
        self.sent = 0
        # Celery and kombu build every message (EventDispatcher.send -> Producer.publish ->
        # the Redis channel's basic_publish); only the PUBLISH commands are pipelined, instead of
        # a round trip (and a new redis-py client) for each event.
        import contextlib

        import redis

        self.pipe = redis.Redis.from_url(broker).pipeline(transaction=False)
        channel = self.dispatcher.producer.channel

        @contextlib.contextmanager
        def pipelined(client: object = None):
            yield self.pipe

        channel.conn_or_acquire = pipelined

    def heartbeat(self, processed: int = 0, now: float | None = None) -> None:
        self.dispatcher.send("worker-heartbeat", freq=2.0, active=0, processed=processed,
                             loadavg=[0, 0, 0], sw_ident="py-celery", sw_ver="5", sw_sys="Linux",
                             timestamp=now or time.time())
        self.sent += 1
        self.flush()

    def flush(self) -> None:
        self.pipe.execute()

    def task(self, i: int, names: int = 100) -> None:
        """The five events of one successful task: sent, received, started, succeeded (+ a heartbeat
        every 100 tasks)."""
        import uuid

        task_id = str(uuid.uuid4())
        name = f"bench.task{i % names}"
        now = time.time()
        send = self.dispatcher.send
        send("task-received", uuid=task_id, name=name, args="()", kwargs="{}", retries=0)
        send("task-started", uuid=task_id)
        send("task-succeeded", uuid=task_id, result="None", runtime=0.001 * (i % 50))
        self.sent += 3
        if i % 100 == 0:
            self.heartbeat(processed=i, now=now)
        if len(self.pipe) >= 300:
            self.flush()

    def close(self) -> None:
        self.flush()
        self.dispatcher.close()
        self.conn.close()
        self.app.close()
