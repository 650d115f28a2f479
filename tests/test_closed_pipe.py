"""A closed pipe keeps the command's outcome: `set -o pipefail` sees a failed task fail.

Each command runs as the installed console script in a real shell, its stdout read by
`true` (which reads nothing) or `head -n 1`; the exit status is the command's own
(PIPESTATUS[0]).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import make_app

CELERYTOOL = str(Path(sys.executable).with_name("celerytool"))


def status(cmd: list[str], reader: str, env: dict[str, str] | None = None) -> int:
    """The exit status of ``cmd | reader`` under pipefail: the command's own."""
    line = " ".join(map(shlex_quote, [CELERYTOOL, *cmd])) + f" | {reader}; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", line], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    return done.returncode


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(str(text))


READERS = ["true", "head -n 1"]


@pytest.fixture
def stored(redis_url):
    """A failed and a successful result stored as Celery stores them; a pending id."""
    app = make_app(redis_url)
    failed, ok = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        raise ValueError("boom " + "x" * 70000)  # a long traceback: more than a pipe holds
    except ValueError as exc:
        import traceback

        app.backend.store_result(failed, exc, "FAILURE", traceback=traceback.format_exc() * 20)
    app.backend.store_result(ok, 5, "SUCCESS")
    app.close()
    return {"url": redis_url, "failed": failed, "ok": ok, "pending": str(uuid.uuid4())}


@pytest.mark.parametrize("reader", READERS)
def test_result_keeps_its_outcome(stored, reader):
    b = ["-b", stored["url"]]
    assert status(["result", stored["failed"], *b], reader) == 1
    assert status(["result", stored["failed"], *b, "-o", "json"], reader) == 1
    assert status(["result", stored["pending"], *b], reader) == 3
    assert status(["result", stored["ok"], *b], reader) == 0


@pytest.mark.parametrize("reader", READERS)
def test_doctor_findings_workers_none_and_peek(redis_url, redis_client, reader):
    redis_client.set("unacked_mutex", "stuck")  # a finding: a lock without expiry
    for _ in range(3000):
        redis_client.lpush("celery", json.dumps({"body": "", "headers": {}, "properties": {}}))
    b = ["-b", redis_url]
    assert status(["doctor", *b], reader) == 1
    assert status(["workers", *b, "-t", "0.5"], reader) == 1
    assert status(["peek", "celery", "--all", *b], reader) == 0
    assert status(["peek", "celery", "--all", *b, "-o", "ndjson"], reader) == 0


def test_console_script_is_there():
    assert shutil.which(CELERYTOOL) or os.path.exists(CELERYTOOL)


@pytest.mark.parametrize("reader", READERS)
def test_retry_sends_everything_when_stdout_goes_away(redis_url, redis_client, reader):
    """retry --yes lists each task as it is sent: a reader that stops early does not stop the
    sending (every stored failure is sent again, the exit status is 0)."""
    from celery import states
    from celery.app.task import Context

    app = make_app(redis_url, result_extended=True)
    for i in range(12_000):  # more than two batches of 5,000, and more lines than a pipe holds
        tid = str(uuid.uuid4())
        request = Context(id=tid, task="tasks.flaky", args=[i], kwargs={}, delivery_info={"routing_key": "x"})
        app.backend.store_result(tid, ValueError(i), states.FAILURE, request=request)
    app.close()
    for fmt in ("table", "json"):
        redis_client.delete("again")
        assert status(["retry", "-b", redis_url, "--queue", "again", "--yes", "-o", fmt], reader) == 0
        assert redis_client.llen("again") == 12_000


@pytest.mark.parametrize("reader", READERS)
def test_send_from_sends_every_line_when_stdout_goes_away(redis_url, redis_client, reader, tmp_path):
    """send --from lists each id as its batch is sent: a reader that stops early does not stop
    the sending (before: 5,000 of 12,000 sent, exit 0, "sent 0 task(s)")."""
    lines = tmp_path / "tasks.ndjson"
    lines.write_text("".join(json.dumps({"task": "tasks.add", "args": [i, i]}) + "\n" for i in range(12_000)))
    for fmt in ("table", "ndjson"):
        redis_client.delete("sq")
        assert status(["send", "--from", str(lines), "--queue", "sq", "-b", redis_url, "-o", fmt], reader) == 0
        assert redis_client.llen("sq") == 12_000
