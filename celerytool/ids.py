"""Fast uuid4 strings: the same format as ``str(uuid.uuid4())``, at bulk speed."""

from __future__ import annotations

import os
from collections.abc import Iterator

_VARIANT = "89ab"
_CHUNK = 4096


def uuid4_strings() -> Iterator[str]:
    """Endless random (version 4, RFC 4122 variant) uuid strings.

    ``uuid.uuid4()`` costs several microseconds each; reading the random
    bytes for thousands at once and formatting them by hand is far cheaper.
    """
    while True:
        hexes = os.urandom(16 * _CHUNK).hex()
        for i in range(0, 32 * _CHUNK, 32):
            h = hexes[i:i + 32]
            yield (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-"
                   f"{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")


_shared = uuid4_strings()


def uuid4() -> str:
    return next(_shared)
