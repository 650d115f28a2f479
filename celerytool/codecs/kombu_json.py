"""The common case, fast: kombu's JSON envelope around a Celery protocol-2 JSON body.

kombu's Redis transport stores ``json.dumps`` of ``{"body": <base64>,
"content-encoding": "utf-8", "content-type": "application/json", "headers":
{...}, "properties": {...}}`` and Celery's json body is ``[args, kwargs,
embed]``.  For exactly that shape, each big value is read with the standard
library's C scanner (``jsonio.scan``), which also says where its text ends, so
the Message keeps the JSON texts of headers, properties, args, kwargs and embed
(``Message.json_texts``) for ``jsonio.record_text`` to write as they are.

``decode`` returns None for anything else, and wherever the texts would not
give the values ``Message.to_json`` gives: kombu-tagged values (``__type__``),
NaN / Infinity / overflowing floats, nesting as deep as ``to_jsonable``
converts, line breaks between tokens, bad base64 / UTF-8 / JSON, bodies over
the size limit.  ``codecs.message`` then decodes it the general way.
"""

from __future__ import annotations

import binascii
import re
from typing import Any

from celerytool.codecs.limits import Limits
from celerytool.errors import DecodeError
from celerytool.jsonio import scan, shallow
from celerytool.model import Message

# kombu's keys in kombu's order, its separators, a base64 body and plain
# content-type / content-encoding: the envelope text up to the headers value
_HEAD = re.compile(r'\{"body": "([A-Za-z0-9+/]*={0,2})", "content-encoding": "(utf-8|utf8)", '
                   r'"content-type": "(application/json)", "headers": ')
_PROPERTIES = ', "properties": '
_FAILED = (StopIteration, ValueError, RecursionError, binascii.Error, DecodeError)  # NotPlain is a ValueError


def decode(raw: bytes, queue: str | None, position: int | None, priority: int | None,
           limits: Limits) -> Message | None:
    """The Message ``decode_envelope`` would give, with its JSON texts; None: not this shape."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head = _HEAD.match(text)
    if head is None or "\n" in text or "\r" in text:
        return None
    try:
        start = head.end()
        headers, end = scan(text, start)
        if headers.__class__ is not dict or "task" not in headers or not text.startswith(_PROPERTIES, end):
            return None
        properties, stop = scan(text, end + len(_PROPERTIES))
        if (stop != len(text) - 1 or text[stop] != "}" or properties.__class__ is not dict
                or properties.get("body_encoding") != "base64"):
            return None
        texts = text[start:end], text[end + len(_PROPERTIES):stop]
        if not (shallow(texts[0]) and shallow(texts[1])):
            return None
        body = binascii.a2b_base64(head.group(1), strict_mode=True)
        compression = headers.get("compression")
        if len(body) > limits.max_bytes:
            return None
        if compression:
            from celerytool.codecs.compression import decompress

            body = decompress(body, str(compression), limits.max_bytes)
        found = _task_body(body.decode("utf-8"))
    except _FAILED:
        return None
    if found is None:
        return None
    args, kwargs, embed, args_text, kwargs_text, embed_text = found
    prio = properties.get("priority", priority)
    return Message.from_state({
        "queue": queue,
        "position": position,
        "priority": prio if isinstance(prio, int) else priority,
        "id": headers.get("id"),
        "task": headers.get("task"),
        "args": args,
        "kwargs": kwargs,
        "eta": headers.get("eta"),
        "expires": headers.get("expires"),
        "retries": headers.get("retries"),
        "protocol": 2,
        "content_type": head.group(3),
        "content_encoding": head.group(2),
        "compression": compression,
        "headers": headers,
        "properties": properties,
        "embed": embed,
        "size": len(raw),
        "error": None,
        "raw": raw,
        "redelivered": None,
        "extra": {},
        "json_texts": (args_text, kwargs_text, embed_text, *texts),
    })


def _task_body(text: str) -> tuple[Any, Any, dict[str, Any], str, str, str] | None:
    """args, kwargs, embed of a ``[args, kwargs, embed]`` JSON text, and their texts."""
    if (text[:1] != "[" or '"__type__"' in text or "\n" in text or "\r" in text
            or not shallow(text)):
        return None
    args, i = scan(text, 1)
    if not text.startswith(", ", i):
        return None
    kwargs, j = scan(text, i + 2)
    if not text.startswith(", ", j):
        return None
    embed, k = scan(text, j + 2)
    if k != len(text) - 1 or text[k] != "]":
        return None
    if embed.__class__ is not dict:
        return args, kwargs, {}, text[1:i], text[i + 2:j], "{}"
    return args, kwargs, embed, text[1:i], text[i + 2:j], text[j + 2:k]
