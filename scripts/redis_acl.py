"""Which Redis commands each celerytool command sends: the ACL table of docs/connection.md.

Starts a private redis-server, fills it with what Celery itself writes (tasks sent with
send_task, results stored by Celery's Redis backend, an unacked entry as kombu leaves it), then
runs each celerytool command while a MONITOR connection records every command the server
executes (also those a Lua script calls: an ACL checks them too).  Prints one row per
celerytool command, ready to paste into docs/connection.md; tests/test_permissions.py runs
commands as a Redis ACL user allowed exactly the documented commands.

    .venv/bin/python scripts/redis_acl.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from services import start_redis  # noqa: E402

CLI = [sys.executable, "-m", "celerytool"]
# Connection set-up every command sends (AUTH, HELLO, SELECT, PING, CLIENT SETINFO/SETNAME):
# granted by +@connection; left out of the rows.
SETUP = {"AUTH", "HELLO", "SELECT", "PING", "CLIENT", "ECHO", "QUIT", "RESET"}


def fill(url: str) -> tuple[list[str], str]:
    """Real Celery messages and results; returns the task ids and an export file."""
    from types import SimpleNamespace

    from celery import Celery

    app = Celery(broker=url, backend=url)
    app.conf.result_extended = True  # retry needs the task's name and arguments
    ids = [app.send_task("tasks.add", args=(i, i), queue="celery").id for i in range(5)]
    app.send_task("tasks.slow", queue="slow")
    app.send_task("tasks.prio", queue="celery", priority=9)
    for i, tid in enumerate(ids[:3]):
        state = "SUCCESS" if i else "FAILURE"
        result = i if i else ValueError("boom")
        request = SimpleNamespace(id=tid, task="tasks.add", args=[i, i], kwargs={}, hostname="w1@h",
                                  retries=0, delivery_info={"routing_key": "celery"}, children=[],
                                  group=None, parent_id=None, ignore_result=False)
        app.backend.store_result(tid, result, state, request=request)
    # an unacked entry, as kombu's Redis transport leaves one for a worker that holds a message
    # (the connection stays open until the census ends: closing it would restore the message)
    conn = app.connection_for_write()
    queue = conn.SimpleQueue("held")
    queue.put({"x": 1})
    HELD.append((conn, queue, queue.get(timeout=5)))  # delivered, not acked: in kombu's unacked hash
    export = Path(tempfile.mkdtemp()) / "export.ndjson"
    subprocess.run([*CLI, "export", "celery", "-b", url, "--file", str(export)], check=True,
                   capture_output=True)
    return ids, str(export)


HELD: list[object] = []


class Monitor:
    def __init__(self, port: int) -> None:
        import redis

        self.client = redis.Redis(port=port)
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.monitor = self.client.monitor()
        self.monitor.__enter__()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for info in self.monitor.listen():
                cmd = info.get("command", "")
                with self.lock:
                    self.seen.append(cmd)
        except Exception:
            pass

    def take(self) -> set[str]:
        time.sleep(0.3)  # MONITOR lines arrive after the command they describe
        with self.lock:
            lines, self.seen = self.seen, []
        names = set()
        for line in lines:
            word = line.split(" ", 1)[0].upper()
            if word in ("CLIENT", "MEMORY", "SCRIPT", "CONFIG", "OBJECT"):
                parts = line.split()
                word = f"{word} {parts[1].upper()}" if len(parts) > 1 else word
            if word and word.split()[0] not in SETUP and word != "MONITOR":
                names.add(word)
        return names


SCRIPTING = ("EVAL", "EVALSHA", "SCRIPT LOAD", "SCRIPT EXISTS")


def normalize(names: list[str]) -> list[str]:
    """Whether a script is loaded or only run depends on the server's script cache: a command that
    runs a script needs all four scripting commands (and, as the ACL checks them too, what the
    script calls)."""
    found = set(names)
    if found & set(SCRIPTING):
        found |= set(SCRIPTING)
    return sorted(found)


def runs(url: str, ids: list[str], export: str) -> list[tuple[str, list[str]]]:
    b = ["-b", url]
    return [
        ("queues", ["queues", *b]),
        ("bindings", ["bindings", *b]),
        ("peek", ["peek", "celery", *b]),
        ("summary", ["summary", "celery", *b]),
        ("send", ["send", "tasks.add", "1", "2", *b]),
        ("result", ["result", ids[0], ids[1], *b]),
        ("result --wait", ["result", ids[1], "--wait", "-t", "5", *b]),
        ("results", ["results", *b]),
        ("failures", ["failures", *b]),
        ("purge --task (selected)", ["purge", "celery", "--task", "tasks.nothing", "-y", *b]),
        ("move", ["move", "slow", "slow2", "-y", *b]),
        ("export --remove", ["export", "slow2", "--remove", "--file", export + ".2", "-y", *b]),
        ("import", ["import", export, "celery", "-y", *b]),
        ("unacked", ["unacked", *b]),
        ("requeue", ["requeue", "-y", *b]),
        ("retry", ["retry", ids[0], "-y", *b]),
        ("forget", ["forget", ids[2], "-y", *b]),
        ("expire", ["expire", "--ttl", "1d", "--all", "-y", *b]),
        ("doctor", ["doctor", *b]),
        ("doctor --fix", ["doctor", "--fix", "orphan-bindings", "-y", *b]),
        ("top", ["top", "--once", "-o", "json", *b]),
        ("workers, inspect", ["workers", "-t", "0.3", *b]),
        ("revoke", ["revoke", ids[3], "-t", "0.3", "-y", *b]),
        ("events", ["events", "-t", "0.5", *b]),
        ("purge (whole queue)", ["purge", "celery", "-y", *b]),
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp))
        try:
            url = server.url()
            ids, export = fill(url)
            mon = Monitor(server.port)
            mon.take()
            rows = []
            env = {**os.environ, "C_FORCE_ROOT": "1"}
            for label, args in runs(url, ids, export):
                r = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60)
                names = mon.take()
                if r.returncode not in (0, 1, 124):
                    print(f"{label}: exit {r.returncode}: {r.stderr.strip()[-300:]}", file=sys.stderr)
                rows.append((label, sorted(names)))
            for label, names in rows:
                print(f"| `{label}` | {' '.join(f'`{n}`' for n in normalize(names))} |")
        finally:
            for conn, *_ in HELD:
                conn.release()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
