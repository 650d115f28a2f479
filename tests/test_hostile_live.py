"""Hostile peers on the live paths: malformed events, worker replies of any shape.

A fake "worker" written with kombu answers remote-control broadcasts with crafted replies,
and an event publisher sends malformed events the way Celery publishes events; celerytool
shows the good ones, reports the bad ones and keeps going.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from timing import within

from services import start_redis, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_redis(tmp_path_factory.mktemp("hostile-redis"))
    yield s
    s.stop()


def cli_process(*args):
    return subprocess.Popen([sys.executable, "-m", "celerytool", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def publish_events(url, bodies, serializer="json"):
    from kombu import Connection, Exchange, Producer

    exchange = Exchange("celeryev", type="fanout")  # Celery's event exchange on Redis (celery/events)
    with Connection(url) as conn:
        producer = Producer(conn.channel(), exchange=exchange)
        for body in bodies:
            producer.publish(body, routing_key="task.x", serializer=serializer, retry=False)


BAD_EVENTS = [
    {"type": "task-succeeded", "clock": "abc", "uuid": "bad-clock-is-dropped", "hostname": "h",
     "timestamp": 1.0},  # kept: only the clock is dropped
    {"hostname": "h", "uuid": "no-type"},
    [1, 2],
    "a string body",
    {"type": "task-succeeded", "timestamp": "yesterday", "uuid": "str-timestamp", "hostname": "h"},
    {"type": "task-succeeded", "timestamp": 1e300, "uuid": "huge-timestamp", "hostname": "h"},
    {"type": 5},
    {"type": "task-received", "uuid": [1, 2]},
]


def test_malformed_events_are_skipped_and_the_stream_goes_on(server):
    url = server.url(0)
    from workers import EventListener

    probe = EventListener(redis.Redis.from_url(url))
    proc = cli_process("events", "-b", url, "-n", "4", "--type", "task-succeeded", "-t", "30", "-o", "ndjson")
    try:
        wait_for(probe.ready, 15)
        publish_events(url, BAD_EVENTS)
        publish_events(url, [{"type": "task-succeeded", "uuid": "pickled"}], serializer="pickle")
        publish_events(url, [{"type": "task-succeeded", "uuid": "good-1", "hostname": "h",
                              "timestamp": time.time(), "clock": 7}])
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    uuids = [json.loads(line)["uuid"] for line in out.splitlines()]
    # the dropped clock / timestamps are replaced; the malformed ones are skipped
    assert uuids == ["bad-clock-is-dropped", "str-timestamp", "huge-timestamp", "good-1"], (out, err)
    assert "skipped a malformed event" in err and "Traceback" not in err
    assert "skipped" in err and "malformed event(s) in all" in err


# -- a hostile remote-control responder -----------------------------------------------------------
YAML_BOMB = "\n".join(["a: &a [" + ",".join(["x"] * 10) + "]"]
                      + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]"
                         for i in range(9)]) + "\n"
RAW = {  # mode -> (body bytes, content type) sent instead of a proper reply
    "pickle": (b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s.", "application/x-python-serialize"),
    "binary": (b"\xff\xfe{\"evil@host\": 1}", "application/json"),
    "deep": (b"[" * 200_000 + b"]" * 200_000, "application/json"),
    "yaml": (YAML_BOMB.encode(), "application/x-yaml"),
}
WRONG_TYPES = {"stats": "str", "active_queues": 7, "active": ["q"], "reserved": "x", "scheduled": {"a": 1},
               "report": 5, "ping": "pong", "revoked": 7, "registered": 7, "conf": ["q"]}


class EvilWorker:
    """A kombu pidbox node answering every broadcast as ``mode`` says, in a thread."""

    def __init__(self, url: str, mode: str) -> None:
        from kombu import Connection
        from kombu.pidbox import Mailbox

        self.mode = mode
        self.conn = Connection(url)
        self.mailbox = Mailbox("celery", type="fanout", accept=["json"])
        handlers = {name: self._handler(name) for name in (*WRONG_TYPES, "heartbeat", "enable_events")}
        self.node = self.mailbox.Node("evil@host", state=None, channel=self.conn.channel(), handlers=handlers)
        if mode in RAW:
            self.node.reply = self._raw_reply
        self.stop = threading.Event()
        self.node.listen()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _handler(self, name):
        def handle(state, **kwargs):
            if self.mode == "escapes" and name == "stats":
                return {"\x1b[2J\x1b]0;pwned\x07key": 1, "pid": 1}
            return WRONG_TYPES.get(name, {"ok": "fine"})
        return handle

    def _raw_reply(self, data, exchange, routing_key, ticket, **kwargs):
        from kombu import Producer

        body, content_type = RAW[self.mode]
        Producer(self.node.channel).publish(body, exchange=exchange, routing_key=routing_key,
                                            headers={"ticket": ticket, "clock": 1},
                                            content_type=content_type, content_encoding="binary")

    def _loop(self):
        while not self.stop.is_set():
            try:
                self.conn.drain_events(timeout=0.1)
            except TimeoutError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.conn.release()


@pytest.fixture(scope="module")
def good_worker(server, tmp_path_factory):
    from workers import start_worker

    worker = start_worker(server.url(1), tmp_path_factory.mktemp("good"), prefix="good")
    yield worker
    worker.stop(wait=5)


@pytest.mark.parametrize("mode", ["types", "pickle", "binary", "deep", "yaml", "escapes"])
def test_hostile_worker_replies_fail_alone(server, good_worker, mode):
    url = server.url(1)
    evil = EvilWorker(url, mode)
    try:
        for args in (["workers", "-t", "2", "-o", "json"], ["inspect", "stats", "-t", "2", "-o", "json"],
                     ["inspect", "active", "-t", "2", "-o", "json"], ["inspect", "stats", "-t", "2"],
                     ["workers", "-t", "2"]):
            start = time.monotonic()
            proc = cli_process(*args, "-b", url)
            out, err = proc.communicate(timeout=60)
            assert time.monotonic() - start < within(30), (args, "took too long")
            assert proc.returncode in (0, 1) and "Traceback" not in err and "internal error" not in err, (
                args, proc.returncode, err)
            if args[0] == "workers" or args[1] == "stats":
                assert good_worker.name in out, (args, out, err)
                assert proc.returncode == 0, (args, err)
            if mode in RAW:
                assert "could not be decoded" in err, (args, err)
            assert "\x1b" not in out or "-o" in args, "a terminal escape reached the terminal"
    finally:
        evil.close()
