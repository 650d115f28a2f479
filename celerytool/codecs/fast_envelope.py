"""The common case, fast: kombu's JSON envelope around a Celery protocol-2 JSON body.

kombu's Redis transport stores ``json.dumps`` of ``{"body": <base64>,
"content-encoding": "utf-8", "content-type": "application/json", "headers":
{...}, "properties": {...}}`` and Celery's json body is ``[args, kwargs,
embed]``.  For exactly that shape, each big value is read with the standard
library's C scanner (``jsontext.scan``), which also says where its text ends, so
the Message keeps the JSON texts of headers, properties, args, kwargs and embed
(``Message.json_texts``) for ``jsontext.record_text`` to write as they are.

``decode`` returns None for anything else, and wherever the texts would not
give the values ``Message.to_json`` gives: kombu-tagged values (``__type__``),
NaN / Infinity / overflowing floats, nesting as deep as ``to_jsonable``
converts, line breaks between tokens, bad base64 / UTF-8 / JSON, bodies over
the size limit.  ``codecs.message`` then decodes it the general way.
"""

from __future__ import annotations

import binascii
import re
import sys
from dataclasses import fields
from typing import Any

from celerytool.codecs.bounds import check_json_size
from celerytool.codecs.limits import Limits
from celerytool.errors import DecodeError
from celerytool.jsontext import scan, shallow
from celerytool.model import Message

# kombu's keys in kombu's order, its separators, a base64 body and plain
# content-type / content-encoding: the envelope text up to the headers value
_HEAD = re.compile(r'\{"body": "([A-Za-z0-9+/]*={0,2})", "content-encoding": "(utf-8|utf8)", '
                   r'"content-type": "(application/json)", "headers": ')
_PROPERTIES = ', "properties": '
if sys.version_info >= (3, 11):
    def _b64(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)
else:  # Python 3.10 has no strict_mode: validate=True refuses characters outside the alphabet
    from base64 import b64decode

    def _b64(text: str) -> bytes:
        return b64decode(text, validate=True)

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
    base64_body, content_encoding, content_type = head.groups()
    try:
        check_json_size(text, limits, "envelope")
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
        body = _b64(base64_body)
        compression = headers.get("compression")
        if len(body) > limits.max_bytes:
            return None
        if compression:
            from celerytool.codecs.compression import decompress

            body = decompress(body, str(compression), limits.max_bytes)
        body_text = body.decode("utf-8")
        check_json_size(body_text, limits)
        found = task_body(body_text)
    except _FAILED:
        return None
    if found is None:
        return None
    args, kwargs, embed, args_text, kwargs_text, embed_text = found
    prio = properties.get("priority", priority)
    state = _STATE.copy()  # every field, in order; cheaper than a dict display
    state["queue"] = queue
    state["position"] = position
    state["priority"] = prio if isinstance(prio, int) else priority
    state["id"] = headers.get("id")
    state["task"] = headers.get("task")
    state["args"] = args
    state["kwargs"] = kwargs
    state["eta"] = headers.get("eta")
    state["expires"] = headers.get("expires")
    state["retries"] = headers.get("retries")
    state["content_type"] = content_type
    state["content_encoding"] = content_encoding
    state["compression"] = compression
    state["headers"] = headers
    state["properties"] = properties
    state["embed"] = embed
    state["size"] = len(raw)
    state["raw"] = raw
    state["extra"] = {}
    state["json_texts"] = (args_text, kwargs_text, embed_text, *texts)
    return Message.from_state(state)


_STATE: dict[str, Any] = {f.name: None for f in fields(Message)}
_STATE["protocol"] = 2
# what Celery writes when a task has no callbacks, errbacks, chain or chord
_NO_EMBED = '{"callbacks": null, "errbacks": null, "chain": null, "chord": null}'
_NO_EMBED_TAIL = f", {_NO_EMBED}]"


def task_body(text: str) -> tuple[Any, Any, dict[str, Any], str, str, str] | None:
    """args, kwargs, embed of a ``[args, kwargs, embed]`` JSON text, and their texts."""
    if (text[:1] != "[" or '"__type__"' in text or "\n" in text or "\r" in text
            or not shallow(text)):
        return None
    args, i = scan(text, 1)
    if not text.startswith(", ", i):
        return None
    kwargs, j = scan(text, i + 2)
    if text.endswith(_NO_EMBED_TAIL) and j + len(_NO_EMBED_TAIL) == len(text):
        embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
        return args, kwargs, embed, text[1:i], text[i + 2:j], _NO_EMBED
    if not text.startswith(", ", j):
        return None
    embed, k = scan(text, j + 2)
    if k != len(text) - 1 or text[k] != "]":
        return None
    if embed.__class__ is not dict:
        return args, kwargs, {}, text[1:i], text[i + 2:j], "{}"
    return args, kwargs, embed, text[1:i], text[i + 2:j], text[j + 2:k]
