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


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (restored as it was, also when nested)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
