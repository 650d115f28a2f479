"""Bounded decompression for every compression kombu writes.

kombu's ``compression`` header holds a MIME type (``application/x-gzip`` is
really a zlib stream).  kombu's own ``decompress`` has no output limit, so a
few kilobytes can expand to gigabytes; here each decompressor is fed with a
cap and stops with an error when the cap is passed.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable

from celerytool.errors import DecodeError

# MIME type (as kombu writes it in the header) and the aliases kombu accepts.
ALIASES: dict[str, str] = {
    "application/x-gzip": "zlib",
    "gzip": "zlib",
    "zlib": "zlib",
    "application/x-bz2": "bzip2",
    "bzip2": "bzip2",
    "bzip": "bzip2",
    "application/x-lzma": "lzma",
    "lzma": "lzma",
    "xz": "lzma",
    "application/x-brotli": "brotli",
    "brotli": "brotli",
    "application/zstd": "zstd",
    "zstd": "zstd",
    "zstandard": "zstd",
}

MIME: dict[str, str] = {
    "zlib": "application/x-gzip",
    "bzip2": "application/x-bz2",
    "lzma": "application/x-lzma",
    "brotli": "application/x-brotli",
    "zstd": "application/zstd",
}


def canonical(name: str) -> str:
    """``application/x-gzip`` or ``gzip`` -> ``zlib``; raise on unknown names."""
    try:
        return ALIASES[name.strip().lower()]
    except KeyError:
        raise DecodeError(f"unknown compression {name!r}") from None


def _too_big(limit: int) -> DecodeError:
    return DecodeError(
        f"decompressed body exceeds {limit} bytes (raise the limit with --max-size)"
    )


def _checked(out: bytes, limit: int, finished: bool) -> bytes:
    if len(out) > limit:
        raise _too_big(limit)
    if not finished:
        raise DecodeError("compressed body is truncated")
    return out


def _zlib(data: bytes, limit: int) -> bytes:
    # wbits=47 accepts both zlib (what kombu writes) and real gzip streams.
    d = zlib.decompressobj(wbits=47)
    out = d.decompress(data, limit + 1)
    return _checked(out, limit, d.eof)


def _stream(module: str, name: str) -> Callable[[bytes, int], bytes]:
    def run(data: bytes, limit: int) -> bytes:
        d = getattr(importlib.import_module(module), name)()  # imported on first use
        out = d.decompress(data, max_length=limit + 1)
        return _checked(out, limit, d.eof)

    return run


def _brotli(data: bytes, limit: int) -> bytes:
    try:
        import brotli
    except ImportError:
        raise DecodeError("brotli compression needs the 'brotli' package") from None
    d = brotli.Decompressor()
    out = d.process(data, output_buffer_limit=limit + 1)
    return _checked(out, limit, d.is_finished())


def _zstd(data: bytes, limit: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            raise DecodeError("zstd compression needs the 'backports.zstd' package") from None
    d = zstd.ZstdDecompressor()
    out = d.decompress(data, max_length=limit + 1)
    return _checked(out, limit, d.eof)


_DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "zlib": _zlib,
    "bzip2": _stream("bz2", "BZ2Decompressor"),
    "lzma": _stream("lzma", "LZMADecompressor"),
    "brotli": _brotli,
    "zstd": _zstd,
}


def decompress(data: bytes, name: str, limit: int) -> bytes:
    """Decompress ``data`` named by a kombu header value, at most ``limit`` bytes out."""
    kind = canonical(name)
    try:
        return _DECOMPRESSORS[kind](data, limit)
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"{kind} decompression failed: {exc}") from None


MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x78\x9c", "zlib"),
    (b"\x78\x01", "zlib"),
    (b"\x78\xda", "zlib"),
    (b"\x1f\x8b", "zlib"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "lzma"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def sniff(data: bytes) -> str | None:
    """Guess a compression from magic bytes (brotli has none)."""
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    return None
