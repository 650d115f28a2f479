"""Limits that keep decoding of hostile input bounded in time and memory."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_NODES = DEFAULT_MAX_BYTES // 64  # 1,048,576


@dataclass(frozen=True)
class Limits:
    """What one body may cost to decode; past any of these it is shown with an error.

    ``max_bytes`` caps a body after base64 and after decompression, and the
    text (str / bytes) a decoded body holds, counting shared references each
    time they are used.  ``max_nodes`` caps the opcodes a pickle runs and the
    values a body holds or expands to through shared references ("billion
    laughs"): about 100 bytes of memory each at most.  ``max_depth`` caps
    nesting, ``max_int_digits`` the decimal digits of one integer (Python's own
    ``int`` <-> text limit).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_nodes: int = DEFAULT_MAX_NODES
    max_depth: int = 500
    max_int_digits: int = 4300

    @classmethod
    def for_size(cls, max_bytes: int) -> Limits:
        """The limits for ``--max-size``: a larger size allows proportionally more values (size / 64)."""
        return cls(max_bytes=max_bytes, max_nodes=max(DEFAULT_MAX_NODES, max_bytes // 64))


DEFAULT_LIMITS = Limits()
