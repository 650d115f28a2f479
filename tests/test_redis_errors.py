"""A Redis that cannot take writes: a read-only replica, a full Redis (OOM), a Redis still loading.

Each writing command ends with one line on stderr and exit 69 (never 70), and
no message is lost: what the queue held before is still there, exactly once.
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from conftest import make_app
from services import start_redis

KEYS = ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169", "other")


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert lines[0].startswith("celerytool: error: "), stderr
    return lines[0]


def ids_by_key(client) -> dict[str, list[str]]:
    return {k: [json.loads(raw)["headers"]["id"] for raw in client.lrange(k, 0, -1)] for k in KEYS}


def fill(url: str) -> list[str]:
    app = make_app(url)
    try:
        return [app.send_task(f"tasks.{name}", (i,), priority=i % 10).id
                for i, name in enumerate(["a", "b", "a", "c", "a"])]
    finally:
        app.close()


def write_commands(export_file, tmp_path):
    good = tmp_path / "good.ndjson"
    return {
        "send": (["send", "tasks.add", "1", "2"], False),
        "purge all": (["purge", "celery", "-y"], True),
        "purge selected": (["purge", "celery", "--task", "tasks.a", "-y"], True),
        "move": (["move", "celery", "other", "--task", "tasks.a", "-y"], True),
        "export --remove": (["export", "celery", "--remove", "-y", "--file", good], True),
        "import": (["import", export_file, "celery", "-y"], False),
    }


@pytest.fixture(scope="module")
def export_file(tmp_path_factory):
    """An export of two real Celery messages, to import into the broken Redis."""
    path = tmp_path_factory.mktemp("exp") / "two.ndjson"
    server = start_redis(tmp_path_factory.mktemp("src"))
    try:
        fill(server.url())
        from click.testing import CliRunner

        from celerytool.cli import cli

        r = CliRunner().invoke(cli, ["export", "celery", "-b", server.url(), "--file", str(path), "--limit", "2"])
        assert r.exit_code == 0, r.output
    finally:
        server.stop()
    return path


def test_read_only_replica(run, tmp_path, export_file):
    master = start_redis(tmp_path / "master")
    replica = start_redis(tmp_path / "replica", extra=("--replicaof", "127.0.0.1", str(master.port)))
    try:
        fill(master.url())
        mc, rc = redis.Redis(port=master.port), redis.Redis(port=replica.port)
        deadline = time.monotonic() + 20
        while ids_by_key(rc) != ids_by_key(mc) or rc.info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "replica did not sync"
            time.sleep(0.05)
        before = ids_by_key(mc)
        for name, (args, _) in write_commands(export_file, tmp_path).items():
            r = run(*args, "-b", replica.url())
            assert r.exit_code == 69, (name, r)
            assert "read-only replica" in one_line_error(r.stderr), name
            assert ids_by_key(mc) == before, name
            assert ids_by_key(rc) == before, name
        # reading from the replica still works
        r = run("peek", "celery", "-b", replica.url(), "-o", "json")
        assert r.exit_code == 0, r
        assert len(r.json()) == 5
    finally:
        replica.stop()
        master.stop()


def test_out_of_memory(run, tmp_path, export_file):
    """maxmemory reached with noeviction: sending and importing are refused (69); a purge or move
    either completes (removals free memory) or is refused, and never loses a message."""
    server = start_redis(tmp_path / "oom")
    try:
        ids = fill(server.url())
        client = redis.Redis(port=server.port)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")  # below what the server already uses
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.lpush("probe", b"x")
        for name, (args, may_succeed) in write_commands(export_file, tmp_path).items():
            before = ids_by_key(client)
            r = run(*args, "-b", server.url())
            after = ids_by_key(client)
            if r.exit_code == 0 and may_succeed:
                # what the command did is all that changed; every id is still in one place or was removed
                flat = [i for v in after.values() for i in v]
                assert len(flat) == len(set(flat)), name
                assert set(flat) <= set(ids), name
                continue
            assert r.exit_code == 69, (name, r)
            assert "out of memory" in one_line_error(r.stderr), name
            assert after == before, name
    finally:
        server.stop()


def test_loading(run, tmp_path):
    """A Redis still loading its dataset answers LOADING: exit 69 with what to do."""
    data = tmp_path / "loading"
    first = start_redis(data, extra=("--dbfilename", "dump.rdb"))
    client = redis.Redis(port=first.port)
    pipe = client.pipeline(transaction=False)
    for i in range(50000):
        pipe.set(f"k{i}", i)
    pipe.execute()
    client.save()
    client.close()
    first.stop()
    # about 200 us per key while loading: several seconds of LOADING
    server = start_redis(data, extra=("--dbfilename", "dump.rdb", "--key-load-delay", "200",
                                        "--loading-process-events-interval-bytes", "1024"))
    try:
        client = redis.Redis(port=server.port)
        try:
            client.ping()
            pytest.skip("the dataset loaded before the test could see LOADING")
        except redis.exceptions.BusyLoadingError:
            pass
        for args in (["send", "tasks.add", "1", "2"], ["peek", "celery"], ["queues"], ["result", "x" * 36]):
            r = run(*args, "-b", server.url(), "--backend", server.url())
            assert r.exit_code == 69, (args, r)
            if args[0] == "send":  # transient: send retries as Celery would, one line per retry
                assert "Traceback" not in r.stderr
                assert "still loading" in r.stderr.strip().splitlines()[-1]
            else:
                assert "still loading" in one_line_error(r.stderr), args
    finally:
        server.stop()
