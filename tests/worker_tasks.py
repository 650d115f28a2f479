"""The test suite's own Celery tasks, run by a real ``celery worker`` (see workers.py).

Configured from the environment the fixture sets: CT_BROKER_URL, CT_READY_FILE,
CT_TRANSPORT_OPTIONS (JSON: broker and result backend transport options, e.g. Sentinel's), and
for other result backends CT_RESULT_BACKEND, CT_RESULT_SERIALIZER, CT_RESULT_EXTENDED (0/1),
CT_TABLE_NAMES (task,group: Celery's database_table_names), CT_QUEUE_TYPE (task_default_queue_type), CT_DEFAULT_QUEUE (task_default_queue),
CT_POOL_RESTARTS=1 (worker_pool_restarts), CT_EXCHANGE_TYPE (task_default_exchange_type).
Tasks that must leave a trace append to the Redis list ``ct:record`` (Redis backend only).
"""

from __future__ import annotations

import json
import os
import time
import uuid

from celery import Celery
from celery.signals import worker_ready

BROKER = os.environ.get("CT_BROKER_URL", "redis://127.0.0.1:6379/15")
ALL = ["json", "pickle", "msgpack", "yaml"]

app = Celery("worker_tasks", broker=BROKER, backend=os.environ.get("CT_RESULT_BACKEND") or BROKER)
if os.environ.get("CT_TABLE_NAMES"):
    _task_table, _group_table = os.environ["CT_TABLE_NAMES"].split(",")
    app.conf.database_table_names = {"task": _task_table, "group": _group_table}
app.conf.update(
    accept_content=ALL,
    result_accept_content=ALL,
    result_serializer=os.environ.get("CT_RESULT_SERIALIZER", "json"),
    result_extended=os.environ.get("CT_RESULT_EXTENDED", "1") == "1",
    task_track_started=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if os.environ.get("CT_QUEUE_TYPE"):  # "quorum": the worker declares its default queue as a quorum queue
    app.conf.task_default_queue_type = os.environ["CT_QUEUE_TYPE"]
if os.environ.get("CT_EXCHANGE_TYPE"):  # "topic": native delayed delivery applies (Celery 5.5+)
    app.conf.task_default_exchange_type = os.environ["CT_EXCHANGE_TYPE"]
if os.environ.get("CT_POOL_RESTARTS") == "1":  # `pool restart` works on this worker
    app.conf.worker_pool_restarts = True
if os.environ.get("CT_DEFAULT_QUEUE"):
    app.conf.task_default_queue = os.environ["CT_DEFAULT_QUEUE"]
if os.environ.get("CT_TRANSPORT_OPTIONS"):
    app.conf.broker_transport_options = json.loads(os.environ["CT_TRANSPORT_OPTIONS"])
    app.conf.result_backend_transport_options = json.loads(os.environ["CT_TRANSPORT_OPTIONS"])


class CustomError(Exception):
    """Raised by ``fail``: the result shows it as worker_tasks.CustomError."""


def record(value) -> None:
    app.backend.client.rpush("ct:record", json.dumps(value))


@worker_ready.connect
def _ready(**_):
    path = os.environ.get("CT_READY_FILE")
    if path:
        with open(path, "w") as fh:
            fh.write(str(os.getpid()))


@app.task(name="worker_tasks.add")
def add(x, y):
    return x + y


@app.task(name="worker_tasks.mul")
def mul(x, y):
    return x * y


@app.task(name="worker_tasks.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="worker_tasks.fail")
def fail(message="boom"):
    raise CustomError(message, 42)


@app.task(name="worker_tasks.stamp", bind=True)
def stamp(self, tag=None):
    """When it ran (epoch seconds), and the eta / expires the worker saw."""
    now = time.time()
    record({"tag": tag, "ran": now})
    return {"ran": now, "eta": self.request.eta, "expires": self.request.expires}


@app.task(name="worker_tasks.mark")
def mark(tag):
    record(tag)
    return tag


@app.task(name="worker_tasks.slow")
def slow(seconds=1.0):
    time.sleep(seconds)
    return seconds


@app.task(name="worker_tasks.progress", bind=True)
def progress(self, go_key, limit=20.0):
    """PROGRESS {'p': 40}, then wait for ``go_key`` to be set, then SUCCESS."""
    self.update_state(state="PROGRESS", meta={"p": 40})
    deadline = time.time() + limit
    while time.time() < deadline and not app.backend.client.exists(go_key):
        time.sleep(0.05)
    return "done"


@app.task(name="worker_tasks.on_error")
def on_error(request, exc, traceback):
    record({"errback": request.id, "exc": type(exc).__name__})


@app.task(name="worker_tasks.save_group")
def save_group(group_id, child_ids):
    """GroupResult.save() with this worker's result backend settings."""
    from celery.result import AsyncResult, GroupResult

    GroupResult(group_id, [AsyncResult(c, app=app) for c in child_ids], app=app).save(backend=app.backend)
    return group_id


@app.task(name="worker_tasks.flaky")
def flaky(kind, n=0, fixed=None):
    """Fails by ``kind`` (value, timeout, key) until the file ``fixed`` exists (failures, retry)."""
    if fixed and os.path.exists(fixed):
        return {"fixed": kind, "n": n}
    if kind == "value":
        raise ValueError(f"bad value {n}")
    if kind == "timeout":
        raise TimeoutError(f"Timeout connecting to 10.0.0.{n} after {n * 5} s (request {uuid.uuid4()})")
    raise KeyError(kind)


@app.task(name="worker_tasks.picky", acks_late=True)
def picky(n, fixed=None):
    """Rejected (dead-lettered: basic.reject without requeue) until the file ``fixed`` exists."""
    from celery.exceptions import Reject

    if fixed and os.path.exists(fixed):
        record({"picky": n})
        return n
    raise Reject("not yet", requeue=False)
