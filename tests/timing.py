"""Wall-clock bounds in tests, scaled for slow machines.

A test that checks a command is fast enough ("returns before its timeout", "a hostile input is
refused within 20 s") states the bound on a quiet 2-core machine; ``CELERYTOOL_TEST_TIME_SCALE``
(default 1) multiplies every such bound, e.g. 3 under valgrind or on a loaded CI host. Bounds
that are the behaviour itself (a command that must wait its whole timeout) keep their lower end.
"""

from __future__ import annotations

import os

SCALE = max(1.0, float(os.environ.get("CELERYTOOL_TEST_TIME_SCALE", "1") or 1))


def within(seconds: float) -> float:
    """An upper bound of ``seconds`` on a quiet machine, scaled."""
    return seconds * SCALE
