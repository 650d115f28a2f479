"""celerytool decode: decode a message offline (file or stdin)."""

from __future__ import annotations

import sys
from typing import Any

import click

from celerytool.cli.options import Compression, with_app


@click.command("decode")
@click.argument("source", type=click.File("rb"), default="-", required=False, metavar="[FILE|-]")
@click.option("--content-type", "content_type", metavar="TYPE",
              help="Force the serializer: json, pickle, msgpack, yaml, or a MIME type.")
@click.option("--compression", type=Compression(), help="Force a compression (a name or kombu's MIME type).")
@click.option("--lines", is_flag=True, help="One message per line (e.g. redis-cli --raw LRANGE output).")
@with_app
def command(app, source, content_type, compression, lines):
    """Decode a message without a broker.

    Accepts a kombu envelope (what LRANGE returns), an entry of the unacked
    hash, a bare body (base64 or not, compressed or not), or redis-cli's
    quoted form ("{\\"body\\": ...}"). Pickles are never executed.

    \b
    Examples:
      redis-cli LINDEX celery -1 | celerytool decode
      celerytool decode body.bin --content-type pickle -o json
      redis-cli --raw LRANGE celery 0 -1 | celerytool decode --lines -o ndjson
    """
    from celerytool.codecs import decode_any

    if source is None:
        source = sys.stdin.buffer
    limits = app.limits()
    data = _read_at_most(source, limits.max_bytes * 2 + 1)
    chunks = [c for c in data.splitlines() if c.strip()] if lines else [data]
    if not lines and not data.strip():
        from celerytool.errors import UsageError

        raise UsageError("nothing to decode: give a FILE or pipe a message on stdin")
    messages = [decode_any(c, content_type=content_type, compression=compression, limits=limits)
                for c in chunks]
    if lines:
        app.emit(messages, "message")
    else:
        app.emit_one(messages[0], "message")
    return 65 if any(m.error for m in messages) else 0


def _read_at_most(source: Any, size: int) -> bytes:
    """Up to ``size`` bytes, a MiB at a time: one ``read(size)`` asks for all of it at once (a
    --max-size of 64G would be a MemoryError before a byte is read)."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = source.read(min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
