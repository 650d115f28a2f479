"""Bulk work: the cyclic garbage collector paused while many small objects are made and kept.

``send --from``, ``retry`` and ``delayed`` build records, plans and messages by the hundred
thousand; none holds a reference cycle, so reference counting frees them all, and the
collector would only rescan every live object (Celery's included) over and over: a third of
the time it took. Whatever is garbage is collected after.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

TOP_PAD = 64 << 20  # bytes glibc's malloc keeps at the top of the heap when it grows or trims it


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (restored as it was, also when nested); freed heap
    kept for reuse (``keep_heap``)."""
    keep_heap()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def keep_heap() -> None:
    """Ask glibc's malloc to keep freed memory at the top of the heap (M_TOP_PAD) instead of
    handing it back to the kernel after each batch: the next batch of messages then reuses those
    pages rather than faulting fresh ones in (a tenth of ``retry``'s time went to the kernel).
    Pages are kept, not added: the peak does not grow.  Elsewhere than glibc, nothing."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or not glibc's
        return
    mallopt(-2, TOP_PAD)  # M_TOP_PAD
