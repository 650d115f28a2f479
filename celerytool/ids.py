"""Fast uuid4 strings: the same format as ``str(uuid.uuid4())``, at bulk speed."""

from __future__ import annotations

import os
from collections.abc import Iterator

_CHUNK = 4096
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))  # byte 6: version 4 in the high nibble
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))  # byte 8: the RFC 4122 variant, 10xxxxxx


# hex digit j (0-31) of an id goes to position _AT[j] of its text (dashes at 8, 13, 18, 23)
_AT = [j + (j >= 8) + (j >= 12) + (j >= 16) + (j >= 20) for j in range(32)]


def uuid4_strings() -> Iterator[str]:
    """Endless random (version 4, RFC 4122 variant) uuid strings.

    ``uuid.uuid4()`` costs several microseconds each.  Here the random bytes of
    thousands come at once, their version and variant bits are set by two
    ``bytes.translate`` calls, and the hex digits of all of them are laid out in
    the 8-4-4-4-12 pattern by 32 slice assignments (one per digit position), so
    that each id is one slice of a long text.
    """
    while True:
        raw = bytearray(os.urandom(16 * _CHUNK))
        raw[6::16] = raw[6::16].translate(_VERSION)
        raw[8::16] = raw[8::16].translate(_VARIANT)
        digits = raw.hex().encode("ascii")
        laid = bytearray(b"-" * (36 * _CHUNK))
        for j, at in enumerate(_AT):
            laid[at::36] = digits[j::32]
        text = laid.decode("ascii")
        for i in range(0, 36 * _CHUNK, 36):
            yield text[i:i + 36]


_shared = uuid4_strings()


def uuid4() -> str:
    return next(_shared)
