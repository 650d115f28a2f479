"""Deserialize a message body by its content type, safely.

json goes through kombu's tagged-type hook only when a tag is present (the
plain path is much faster); pickle goes through the inert unpickler; yaml
uses the safe loader with an alias cap; msgpack as kombu reads it.
"""

from __future__ import annotations

import json
from typing import Any

from celerytool.codecs.limits import Limits
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


def serializer_name(content_type: str | None) -> str:
    if not content_type:
        return "json"
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


def loads_json(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        if '"__type__"' in text:
            from kombu.utils.json import loads as kombu_loads

            return kombu_loads(text)
        return json.loads(text)
    except ValueError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None


def check_expansion(value: Any, limit: int) -> None:
    """Refuse values whose shared references expand past ``limit`` nodes.

    YAML aliases and pickle memo references let a few bytes describe a tree
    of billions of nodes ("billion laughs"); anything that walks it (JSON
    output, selection) would never finish.  Count without recursion.
    """
    seen = 0
    stack = [value]
    while stack:
        v = stack.pop()
        seen += 1
        if seen > limit:
            raise DecodeError(f"body expands to more than {limit} values through shared references")
        if isinstance(v, dict):
            stack.extend(v.values())
            stack.extend(v.keys())
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)


def _yaml(text: str, limits: Limits) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        value = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise DecodeError(f"body is not valid YAML: {str(exc).splitlines()[0]}") from None
    if "*" in text:  # aliases share nodes: make sure the expanded tree is bounded
        check_expansion(value, limits.max_nodes)
    return value


def _msgpack(body: bytes) -> Any:
    try:
        import msgpack
    except ImportError:
        raise DecodeError("msgpack bodies need the 'msgpack' package") from None
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:
        raise DecodeError(f"body is not valid msgpack: {exc}") from None


def _raw(body: bytes, content_encoding: str | None) -> Any:
    """kombu's rule for a content type without a decoder: text in its encoding, else the bytes.

    Only text encodings: ``bytes.decode`` refuses codecs such as zlib or
    base64, which ``codecs.decode`` (kombu) would run without a size limit.
    """
    enc = (content_encoding or "utf-8").lower()
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
        return loads_json(_text(body, None))
    if kind == "pickle":
        from celerytool.codecs.inert_pickle import inert_loads

        value = inert_loads(body)
        if b"h" in body or b"g" in body or b"j" in body:  # BINGET / GET / LONG_BINGET: memo reuse
            check_expansion(value, limits.max_nodes)
        return value
    if kind == "msgpack":
        return _msgpack(body)
    if kind == "yaml":
        return _yaml(_text(body, None), limits)
    return _raw(body, content_encoding)
