"""Deserialize a message body by its content type, safely.

json goes through kombu's tagged-type hook only when a tag is present (the
plain path is much faster); pickle goes through the inert unpickler; yaml
uses the safe loader; msgpack as kombu reads it.  Every value comes back
within ``Limits`` (``codecs.bounds``): JSON cannot share references, so only
its depth is checked, and only when its text could nest that deep.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from json.scanner import make_scanner
from typing import Any

from celerytool.codecs.bounds import (
    check_json_size,
    check_msgpack_size,
    check_value,
    check_yaml_size,
)
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import DecodeError

CONTENT_TYPES: dict[str, str] = {
    "application/json": "json",
    "application/x-python-serialize": "pickle",
    "application/x-msgpack": "msgpack",
    "application/x-yaml": "yaml",
    "application/data": "raw",  # kombu: bytes published without a serializer
    "application/text": "raw",
    "text/plain": "raw",  # kombu: text published without a serializer
}
SERIALIZER_CONTENT_TYPE = {v: k for k, v in CONTENT_TYPES.items() if k not in ("application/text", "text/plain")}


def serializer_name(content_type: object) -> str:
    if not content_type:
        return "json"
    if not isinstance(content_type, str):  # an envelope's content-type may be any JSON value
        raise DecodeError(f"content type is a JSON {type(content_type).__name__}, not text")
    ct = content_type.split(";", 1)[0].strip().lower()
    try:
        return CONTENT_TYPES[ct]
    except KeyError:
        raise DecodeError(f"unknown content type {content_type!r}") from None


def _text(body: bytes, encoding: str | None) -> str:
    enc = encoding if encoding and encoding not in {"binary", "8bit"} else "utf-8"
    try:
        return body.decode(enc)
    except (LookupError, UnicodeDecodeError) as exc:
        raise DecodeError(f"body is not valid {enc}: {exc}") from None


# json.loads's own scanner (C); typeshed types its argument as the scanner class itself
_scan_json = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_loads(text: str) -> Any:
    """``json.loads(text)``; a text that is one value from its first character to its last
    (what Celery stores) skips the whitespace checks around the scanner."""
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # not a value at 0 (whitespace first, or not JSON): json.loads says
        return json.loads(text)
    if end != len(text):  # whitespace or more after it: json.loads decides
        return json.loads(text)
    return value


def loads_json(text: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    if isinstance(text, bytes):
        text = _text(text, None)
    check_json_size(text, limits)
    try:
        if '"__type__"' in text:
            from kombu.utils.json import loads as kombu_loads

            value = kombu_loads(text)
        else:
            value = _json_loads(text)
    except RecursionError:
        raise DecodeError(f"body nests more than {limits.max_depth} levels deep") from None
    except ValueError as exc:  # also a number of more than 4300 digits
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    except Exception as exc:  # kombu's hook on a bad tagged value: {"__type__": "bytes", "__value__": 5}
        raise DecodeError(f"body has a bad kombu-tagged value: {type(exc).__name__}: {exc}") from None
    check_depth(text, value, limits)
    return value


def check_depth(text: str | bytes, value: Any, limits: Limits, what: str = "body") -> None:
    """Nesting past ``max_depth`` in a parsed JSON text.

    JSON cannot share references and its numbers and text are as long as the
    text itself, so only the depth is checked, and only when the text has
    enough brackets to reach it.
    """
    n = limits.max_depth
    if len(text) <= 2 * n:
        return
    opens = (text.count(b"[") + text.count(b"{") if isinstance(text, bytes)
             else text.count("[") + text.count("{"))
    if opens > n:
        check_value(value, replace(limits, max_nodes=sys.maxsize, max_bytes=sys.maxsize), what)


def _yaml(text: str, limits: Limits) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    check_yaml_size(text, limits)
    try:
        value = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise DecodeError(f"body is not valid YAML: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise DecodeError(f"body is not valid YAML: {exc}") from None
    except RecursionError:
        raise DecodeError(f"yaml body nests more than {limits.max_depth} levels deep") from None
    check_value(value, limits, "yaml body")  # aliases share nodes: bound the expanded tree
    return value


def _msgpack(body: bytes, limits: Limits) -> Any:
    try:
        import msgpack
    except ImportError:
        raise DecodeError("msgpack bodies need the 'msgpack' package") from None
    check_msgpack_size(body, limits)
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:
        raise DecodeError(f"body is not valid msgpack: {str(exc) or type(exc).__name__}") from None
    check_value(value, limits, "msgpack body")
    return value


def _raw(body: bytes, content_encoding: str | None) -> Any:
    """kombu's rule for a content type without a decoder: text in its encoding, else the bytes.

    Only text encodings: ``bytes.decode`` refuses codecs such as zlib or
    base64, which ``codecs.decode`` (kombu) would run without a size limit.
    """
    enc = content_encoding.lower() if isinstance(content_encoding, str) and content_encoding else "utf-8"
    if content_encoding and not isinstance(content_encoding, str):  # not an encoding: the bytes
        return body
    if enc in ("binary", "ascii-8bit"):
        return body
    try:
        return body.decode(enc)
    except (LookupError, UnicodeDecodeError):
        return body


def deserialize(body: bytes, content_type: str | None, content_encoding: str | None, limits: Limits) -> Any:
    """Like kombu's ``loads``: a type with a decoder ignores the content-encoding label
    (celery-ts labels compressed JSON ``base64``); json and yaml text is UTF-8."""
    kind = serializer_name(content_type)
    if kind == "json":
        return loads_json(_text(body, None), limits)
    if kind == "pickle":
        from celerytool.codecs.inert_pickle import inert_loads

        return inert_loads(body, limits)
    if kind == "msgpack":
        return _msgpack(body, limits)
    if kind == "yaml":
        return _yaml(_text(body, None), limits)
    return _raw(body, content_encoding)
