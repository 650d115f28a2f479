"""Bulk work (celerytool.bulk): the collector paused and freed heap kept for the next batch."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest

from celerytool.bulk import gc_paused

# Batches as retry and send --from make them: 2,000 texts of 1 KB, joined into one buffer,
# fifty times; the page faults of the last fifty counted.
BATCHES = textwrap.dedent("""
    import os, resource, sys
    if sys.argv[1] == "keep":
        from celerytool.bulk import keep_heap
        keep_heap()
    def batch():
        texts = [os.urandom(16).hex() * 32 for _ in range(2000)]
        return b"".join(t.encode() for t in texts)
    batch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        batch()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", BATCHES, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_kept_heap_serves_the_next_batches_without_fresh_pages():
    plain, kept = _faults("plain"), _faults("keep")
    assert plain > 10_000  # each batch's buffers came from fresh pages
    assert kept < plain // 20


def test_gc_paused_restores_the_collector():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
