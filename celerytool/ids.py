"""Fast uuid4 strings: the same format as ``str(uuid.uuid4())``, at bulk speed."""

from __future__ import annotations

import os
from collections.abc import Iterator

_CHUNK = 4096
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))  # byte 6: version 4 in the high nibble
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))  # byte 8: the RFC 4122 variant, 10xxxxxx


def uuid4_strings() -> Iterator[str]:
    """Endless random (version 4, RFC 4122 variant) uuid strings.

    ``uuid.uuid4()`` costs several microseconds each.  Here the random bytes of
    thousands come at once, their version and variant bits are set by two
    ``bytes.translate`` calls, and ``bytes.hex`` writes them as 4-digit groups
    that each id joins in the 8-4-4-4-12 pattern.
    """
    while True:
        raw = bytearray(os.urandom(16 * _CHUNK))
        raw[6::16] = raw[6::16].translate(_VERSION)
        raw[8::16] = raw[8::16].translate(_VARIANT)
        g = raw.hex("-", 2).split("-")
        for i in range(0, 8 * _CHUNK, 8):
            yield f"{g[i]}{g[i + 1]}-{g[i + 2]}-{g[i + 3]}-{g[i + 4]}-{g[i + 5]}{g[i + 6]}{g[i + 7]}"


_shared = uuid4_strings()


def uuid4() -> str:
    return next(_shared)
