"""Size limits that keep decoding of hostile input bounded."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """``max_bytes`` caps a body after base64 and after decompression."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_nodes: int = 2_000_000  # values a yaml/pickle body may expand to via shared refs


DEFAULT_LIMITS = Limits()
