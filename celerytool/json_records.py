"""JSON text in and out with the standard library, for the machine formats.

``dumps`` writes compact JSON.  ``scan`` reads one JSON value at an index and
says where its text ends, refusing what ``to_jsonable`` would change (NaN,
Infinity, floats that overflow).  ``record_text`` is the one place that
decides how a record becomes JSON text: a ``Message`` that kept the JSON text
of its big values (``Message.json_texts``) is written by joining that text
with its small fields, anything else as ``dumps(record.to_json())``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

# compact JSON text (``,`` ``:``, UTF-8 kept) of a value made of JSON types
dumps: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# nesting where to_jsonable stops converting (depth > 200): a text with fewer
# opening brackets than this cannot reach it, and valid JSON with n brackets is
# at least 2n characters long
MAX_PLAIN_BRACKETS = 201


class NotPlain(ValueError):
    """A JSON text holds NaN, Infinity or a float that overflows."""


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # 1e400 overflows to inf
        raise NotPlain(text)
    return value


def _no_constant(name: str) -> Any:
    raise NotPlain(name)


# (value, end) of the JSON value at an index of a text; raises StopIteration
# (no value there), ValueError (bad JSON) or NotPlain
scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(
    parse_float=_finite_float, parse_constant=_no_constant).scan_once  # type: ignore[attr-defined]


def shallow(text: str) -> bool:
    """Whether ``text`` surely nests less deep than ``to_jsonable`` converts."""
    return len(text) < 2 * MAX_PLAIN_BRACKETS or text.count("[") + text.count("{") < MAX_PLAIN_BRACKETS


def _small(value: Any) -> str:
    kind = value.__class__
    if kind is str:
        return _quote(value)
    if value is None:
        return "null"
    if kind is int:  # not bool
        return f"{value}"
    return dumps(value)


small_text = _small  # the compact JSON text of a small value (str, int, None, float, bool)


def record_text(record: Any, end: str = "") -> str:
    """The compact JSON text of a record, then ``end``: the values of ``dumps(record.to_json())``.
    A record with a ``json_text()`` method (kept JSON texts) gives its own text when it can."""
    own = getattr(record, "json_text", None)
    if own is not None and (text := own()) is not None:
        return text + end
    texts = getattr(record, "json_texts", None)
    if texts is None or record.error is not None or record.extra or record.redelivered is not None:
        return dumps(record.to_json() if hasattr(record, "to_json") else record) + end
    args, kwargs, embed, headers, properties = texts
    s = _small
    # Message.to_json's keys in its order
    return (f'{{"queue":{s(record.queue)},"position":{s(record.position)},'
            f'"priority":{s(record.priority)},"id":{s(record.id)},"task":{s(record.task)},'
            f'"args":{args},"kwargs":{kwargs},"eta":{s(record.eta)},"expires":{s(record.expires)},'
            f'"retries":{s(record.retries)},"protocol":{s(record.protocol)},'
            f'"content_type":{s(record.content_type)},'
            f'"content_encoding":{s(record.content_encoding)},'
            f'"compression":{s(record.compression)},"headers":{headers},"properties":{properties},'
            f'"embed":{embed},"size":{s(record.size)},"error":null}}{end}')
