"""Peak memory of `peek --all` in every output format, and of a dry-run listing, over 200,000 messages.

Each run is a fresh `celerytool` subprocess whose peak resident size is read by a
small parent (RUSAGE_CHILDREN); the figures are printed (`-s` shows them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from msgfactory import clones, push, real_envelope

N = 200_000
LIMIT_MB = 150
ROOT = Path(__file__).resolve().parent.parent

MEASURE = ("import resource, subprocess, sys, time\n"
           "t = time.monotonic()\n"
           "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
           "t = time.monotonic() - t\n"
           "sys.stderr.buffer.write(rc.stderr[-2000:])\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, rc.returncode, t)\n")


def peak_mb(*args, env=None):
    """Peak RSS (MB), exit code and stderr of `celerytool ARGS` with stdout thrown away."""
    exe = [sys.executable, "-m", "celerytool", *args]
    out = subprocess.run([sys.executable, "-c", MEASURE, *exe], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "120", **(env or {})}, cwd=ROOT)
    mb, rc, seconds = out.stdout.split()
    print(f"\n{' '.join(args[:-2])}: {N:,} messages in {float(seconds):.1f} s, peak {mb} MB", end="")
    return int(mb), int(rc), out.stderr


@pytest.fixture(scope="module")
def deep_queue(redis_server):
    """200,000 real Celery messages in `deep` (one envelope from send_task, cloned, pipelined)."""
    import redis

    from conftest import clean_db_url, make_app

    url = clean_db_url(redis_server, 7)
    app = make_app(url)
    client = redis.Redis.from_url(url)
    template = real_envelope(app, client, "tasks.deep", args=(1, "two"), kwargs={"three": 3}, queue="deep")
    push(client, "deep", [raw for _, raw in clones(template, N)], chunk=5000)
    assert client.llen("deep") == N
    yield url
    client.flushdb()
    client.close()
    app.close()


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson"])
def test_peek_all_streams_in_bounded_memory(deep_queue, fmt):
    mb, rc, err = peak_mb("peek", "deep", "--all", "-o", fmt, "-b", deep_queue)
    assert rc == 0, err
    assert mb < LIMIT_MB, f"peek --all -o {fmt} peaked at {mb} MB"


def test_dry_run_listing_is_bounded(deep_queue):
    mb, rc, err = peak_mb("purge", "deep", "--task", "tasks.deep", "--dry-run", "-b", deep_queue)
    assert rc == 0, err
    assert f"would remove {N} of {N}" in err
    assert "more" in err  # at most N rows listed, then a count
    assert mb < LIMIT_MB
