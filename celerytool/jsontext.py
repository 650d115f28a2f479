"""JSON in one place: values -> tagged JSON-able values, and every JSON text celerytool writes.

Three texts, each for its reader:

- ``dumps``: the compact text of the machine formats (``-o json`` / ``-o ndjson``, export
  lines): ``,`` ``:`` separators, UTF-8 kept.  ``record_text`` decides how a record becomes
  that text (a ``Message`` that kept the JSON text of its big values is joined from it).
- ``celery_dumps`` / ``make_celery_dumps``: the text Celery itself puts in a message body
  or a stored envelope (``json.dumps`` defaults, as kombu writes), from one reusable C
  encoder for bulk paths.
- ``short_repr``: one line of a value for tables.

``scan`` reads one JSON value at an index and says where its text ends, refusing what
``to_jsonable`` would change (NaN, Infinity, floats that overflow).

``to_jsonable``: values JSON cannot hold become ``{"__type__": T, "__value__": V}``, the
form kombu's own JSON serializer uses, so a celerytool export reads back with
``kombu.utils.json.loads`` where kombu knows the type:

=============  ==========================================================
``datetime``   ISO 8601 text (``date``, ``time`` likewise)
``timedelta``  total seconds (float)
``decimal``    the number as text
``uuid``       canonical text
``bytes``      UTF-8 text; ``base64`` (text) when not valid UTF-8
``set``        list (``frozenset`` likewise)
``complex``    ``[real, imag]``
``pickle``     an object a pickle would have built, never built:
               ``{"global": "module.name", "args": [...], "state": ...,
               "items": [...], "dict": {...}}`` (keys only when present)
``repr``       anything else, as its ``repr``
=============  ==========================================================

Tuples become lists; dict keys that are not strings become their JSON text.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import sys
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

_quote: Callable[[str], str] = encode_basestring_ascii
quote = _quote  # the JSON text of a str, ASCII-escaped (as json.dumps writes it)


# -- Python values -> JSON-able values --------------------------------------------------

def tag(kind: str, value: Any) -> dict[str, Any]:
    return {"__type__": kind, "__value__": value}


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Return a structure made only of dict/list/str/int/float/bool/None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return tag("float", repr(value))
    if _depth > 200:
        return tag("repr", "<nested too deeply>")
    d = _depth + 1
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, d) for v in value]
    if isinstance(value, _dt.datetime):
        return tag("datetime", value.isoformat())
    if isinstance(value, _dt.date):
        return tag("date", value.isoformat())
    if isinstance(value, _dt.time):
        return tag("time", value.isoformat())
    if isinstance(value, _dt.timedelta):
        return tag("timedelta", value.total_seconds())
    if isinstance(value, _dt.tzinfo):
        return tag("tzinfo", str(value))
    if _instance_of(value, "decimal", "Decimal"):
        return tag("decimal", str(value))
    if _instance_of(value, "uuid", "UUID"):
        return tag("uuid", str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return tag("bytes", raw.decode("utf-8"))
        except UnicodeDecodeError:
            import base64

            return tag("base64", base64.b64encode(raw).decode("ascii"))
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, d) for v in value]
        try:
            items.sort(key=repr)
        except Exception:  # pragma: no cover - repr never fails on jsonable
            pass
        return tag("set", items)
    if isinstance(value, complex):
        return tag("complex", [value.real, value.imag])
    describe = getattr(value, "__celerytool_json__", None)
    if describe is not None:
        return describe(d)
    return tag("repr", repr(value))


def _instance_of(value: Any, module: str, name: str) -> bool:
    """isinstance without importing ``module``: no instance exists before its import."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, (bool, int, float)):
        return json.dumps(k)
    return repr(k)


def short_repr(value: Any, limit: int = 80, *, spaced: bool = False) -> str:
    """A one-line text of a decoded value, for tables (``spaced``: as Celery writes JSON, ``[1, 2]``)."""
    try:
        text = json.dumps(to_jsonable(value), ensure_ascii=False,
                          separators=(", ", ": ") if spaced else (",", ":"))
    except Exception:
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# -- the machine formats' text ---------------------------------------------------------

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


# -- Celery's own text (message bodies, stored envelopes) ------------------------------

def _no_default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def make_celery_dumps(default: Callable[[Any], Any] | None = None) -> Callable[[Any], str]:
    """A ``dumps(obj)`` (Celery's body text) equal to ``json.dumps(obj, default=default)``."""
    try:
        from json.encoder import c_make_encoder  # type: ignore[attr-defined]

        encoder = c_make_encoder(None, default or _no_default, encode_basestring_ascii, None,
                                 ": ", ", ", False, False, True)
    except (ImportError, TypeError):  # no C accelerator, or another signature
        return json.JSONEncoder(default=default).encode

    def dumps(obj: Any) -> str:
        if obj.__class__ is str:
            return encode_basestring_ascii(obj)
        return "".join(encoder(obj, 0))

    return dumps


celery_dumps = make_celery_dumps()
