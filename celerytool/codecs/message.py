"""Envelope and payload decoding into Message: protocol 1 and 2, every serializer."""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import re
from typing import Any

from celerytool.codecs import fast_envelope
from celerytool.codecs.bounds import check_json_size
from celerytool.codecs.compression import decompress, sniff
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.codecs.serializers import SERIALIZER_CONTENT_TYPE, check_depth, deserialize
from celerytool.errors import DecodeError
from celerytool.jsontext import to_jsonable
from celerytool.model import Message

EMBED_KEYS = ("callbacks", "errbacks", "chain", "chord")
# fields that are text or a number when Celery wrote them; anything else a header or a pickled
# body holds (a datetime, bytes, NaN: a hostile producer) is kept as JSON can carry it
_SCALARS = ("id", "task", "eta", "expires", "retries")


def open_envelope(raw: bytes | str, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parse kombu's JSON envelope (or an ``unacked`` entry holding one)."""
    if len(raw) > 2 * limits.max_bytes:  # a base64 body of --max-size and its headers fit
        raise DecodeError(f"envelope of {len(raw)} bytes exceeds twice {limits.max_bytes} "
                          "(raise with --max-size)")
    check_json_size(raw, limits, "envelope")
    try:
        env = json.loads(raw)
    except RecursionError:
        raise DecodeError(f"envelope nests more than {limits.max_depth} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"envelope is not valid JSON: {exc}") from None
    check_depth(raw, env, limits, "envelope")
    if isinstance(env, list) and env and isinstance(env[0], dict):
        env = env[0]  # unacked hash value: [envelope, exchange, routing_key]
    if not isinstance(env, dict) or "body" not in env:
        raise DecodeError("not a kombu envelope (no 'body' field)")
    return env


def envelope_body(env: dict[str, Any]) -> bytes:
    body = env.get("body")
    props = env.get("properties") or {}
    if body is None:
        return b""
    if isinstance(props, dict) and props.get("body_encoding") == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DecodeError(f"body is not valid base64: {exc}") from None
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate escaped in the JSON: "\\ud800"
            raise DecodeError(f"body is not valid text: {exc}") from None
    raise DecodeError(f"body is a JSON {type(body).__name__}, not text")


def decode_envelope(
    raw: bytes,
    *,
    queue: str | None = None,
    position: int | None = None,
    priority: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
    extra: dict[str, Any] | None = None,
    fast: bool = True,
) -> Message:
    """Decode one Redis-stored message; never raises for bad data.

    ``fast``: try ``fast_envelope.decode`` first, the common case (the same
    Message, with its JSON texts); False decodes the general way only.
    """
    if fast and extra is None and raw.__class__ is bytes:
        message = fast_envelope.decode(raw, queue, position, priority, limits)
        if message is not None:
            return message
    try:
        env = open_envelope(raw, limits)
        body = envelope_body(env)
    except DecodeError as exc:
        return Message(queue=queue, position=position, priority=priority, size=len(raw),
                       error=str(exc), raw=raw, extra=extra or {})
    headers = env.get("headers")
    props = env.get("properties")
    return decode_payload(
        body,
        env.get("content-type"),
        env.get("content-encoding"),
        headers if isinstance(headers, dict) else {},
        props if isinstance(props, dict) else {},
        queue=queue,
        position=position,
        priority=priority,
        size=len(raw),
        raw=raw,
        limits=limits,
        extra=extra,
    )


def decode_payload(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    headers: dict[str, Any],
    properties: dict[str, Any],
    *,
    queue: str | None = None,
    position: int | None = None,
    priority: int | None = None,
    size: int | None = None,
    raw: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    redelivered: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> Message:
    """A Message from a body and its metadata; never raises for bad data."""
    compression = headers.get("compression") if isinstance(headers, dict) else None
    prio = properties.get("priority", priority)
    fields: dict[str, Any] = {}
    error = None
    try:
        if len(body) > limits.max_bytes:
            raise DecodeError(f"body of {len(body)} bytes exceeds {limits.max_bytes} (raise with --max-size)")
        if compression:
            body = decompress(body, str(compression), limits.max_bytes)
        payload = deserialize(body, content_type, content_encoding, limits)
        fields = task_fields(headers, payload)
    except DecodeError as exc:
        error = str(exc)
    except Exception as exc:  # a decoder bug must not stop a listing
        error = f"cannot decode: {type(exc).__name__}: {exc}"
    error = fields.pop("error", error)
    if "body" in fields:  # not a task: show what the body held
        extra = {**(extra or {}), "body": fields.pop("body")}
    if not fields.get("id") and isinstance(headers, dict):
        fields.setdefault("id", headers.get("id"))
        fields.setdefault("task", headers.get("task"))
    for name in _SCALARS:
        value = fields.get(name)
        if value is not None and value.__class__ is not str and value.__class__ is not int:
            fields[name] = to_jsonable(value)
    if compression is not None and compression.__class__ is not str:
        compression = to_jsonable(compression)
    return Message.from_fields({
        "queue": queue,
        "position": position,
        "priority": prio if isinstance(prio, int) else priority,
        "content_type": content_type,
        "content_encoding": content_encoding,
        "compression": compression,
        "headers": headers,
        "properties": properties,
        "size": size if size is not None else len(body),
        "error": error,
        "raw": raw,
        "redelivered": redelivered,
        "extra": extra or {},
        **fields,
    })


def _iso(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return value


def task_fields(headers: dict[str, Any], payload: Any) -> dict[str, Any]:
    """Pick the task fields out of headers + body for protocol 2 or 1."""
    if isinstance(headers, dict) and "task" in headers:
        out: dict[str, Any] = {
            "protocol": 2,
            "id": headers.get("id"),
            "task": headers.get("task"),
            "eta": _iso(headers.get("eta")),
            "expires": _iso(headers.get("expires")),
            "retries": headers.get("retries"),
        }
        if isinstance(payload, (list, tuple)) and len(payload) == 3:
            args, kwargs, embed = payload
            out.update(args=args, kwargs=kwargs, embed=embed if isinstance(embed, dict) else {})
        elif isinstance(payload, dict) and "args" in payload:  # "hybrid" v2 header + v1 body
            out.update(args=payload.get("args"), kwargs=payload.get("kwargs"),
                       embed={k: payload.get(k) for k in EMBED_KEYS if k in payload})
        else:  # show what it holds (e.g. a hostile pickle's inert description)
            out["error"] = "protocol 2 body is not [args, kwargs, embed]"
            out["body"] = payload
        return out
    if isinstance(payload, dict) and "task" in payload:
        return {
            "protocol": 1,
            "id": payload.get("id"),
            "task": payload.get("task"),
            "args": payload.get("args"),
            "kwargs": payload.get("kwargs"),
            "eta": _iso(payload.get("eta")),
            "expires": _iso(payload.get("expires")),
            "retries": payload.get("retries"),
            "embed": {k: payload.get(k) for k in EMBED_KEYS if k in payload},
        }
    if (isinstance(payload, (list, tuple)) and len(payload) == 3
            and isinstance(payload[0], (list, tuple)) and isinstance(payload[1], dict)):
        # a bare protocol-2 body without its headers (pasted on its own)
        embed = payload[2] if isinstance(payload[2], dict) else {}
        return {"protocol": 2, "args": payload[0], "kwargs": payload[1], "embed": embed}
    return {"error": "not a Celery task message (no task header or task field)", "body": payload}


# --- decode: guess what a pasted blob is --------------------------------------------

_REDIS_CLI_ESCAPE = re.compile(rb'\\(x[0-9a-fA-F]{2}|.)', re.S)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b", b'"': b'"', b"\\": b"\\"}


def unquote_redis_cli(data: bytes) -> bytes:
    """Undo redis-cli's quoting: ``"{\\"body\\": ...}\\x80"`` -> raw bytes."""
    inner = data[1:-1]

    def sub(m: re.Match[bytes]) -> bytes:
        esc = m.group(1)
        if esc[:1] == b"x" and len(esc) == 3:
            return bytes([int(esc[1:], 16)])
        return _SIMPLE.get(esc, esc)

    return _REDIS_CLI_ESCAPE.sub(sub, inner)


def _looks_base64(data: bytes) -> bool:
    return len(data) >= 4 and re.fullmatch(rb"[A-Za-z0-9+/=\s]+", data) is not None


def _sniff_content_type(data: bytes) -> str:
    if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
        return "application/x-python-serialize"
    if data[:1] in (b"[", b"{", b'"') or data[:4] in (b"null", b"true"):
        return "application/json"
    if data[:1] in (b"\x93", b"\x92", b"\x91", b"\x90") or 0x80 <= data[0] <= 0x8F or data[:1] in (b"\xdc", b"\xdd", b"\xde", b"\xdf"):
        return "application/x-msgpack"
    if data[:2] in (b"- ", b"--") or data[:1] == b"-":
        return "application/x-yaml"
    if data[:1] in (b"(", b"c", b"]", b"}"):
        return "application/x-python-serialize"  # protocol 0/1 pickle
    return "application/json"


def decode_any(
    data: bytes,
    *,
    content_type: str | None = None,
    compression: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """Decode an envelope, an ``unacked`` entry or a bare body (base64 or not)."""
    size = len(data)
    text = data.strip()
    if len(text) >= 2 and text[:1] == b'"' and text[-1:] == b'"' and b"\\" in text:
        text = unquote_redis_cli(text)
    if text[:1] in (b"{", b"["):
        try:
            check_json_size(text, limits)
            parsed = json.loads(text)
        except (ValueError, RecursionError, DecodeError):  # the general path says what is wrong
            parsed = None
        if isinstance(parsed, list) and len(parsed) == 3 and isinstance(parsed[0], dict) and "body" in parsed[0]:
            return decode_envelope(text, limits=limits,
                                   extra={"exchange": parsed[1], "routing_key": parsed[2]})
        if isinstance(parsed, dict) and "body" in parsed and ("properties" in parsed or "content-type" in parsed):
            return decode_envelope(text, limits=limits)
    body = text
    # binary by what was forced (pickle, msgpack, a compression): base64 text is their body's
    # transport form, as kombu stores it; else the decoded bytes must look like a body
    forced = None if content_type is None else SERIALIZER_CONTENT_TYPE.get(content_type, content_type)
    binary = forced in ("application/x-python-serialize", "application/x-msgpack") or compression is not None
    if (binary or content_type is None) and _looks_base64(text) and not text.isdigit():
        try:
            candidate = base64.b64decode(text, validate=False)
            if candidate and (binary or sniff(candidate) or candidate[:1] in (b"\x80", b"[", b"{", b"\x93")):
                body = candidate
        except (binascii.Error, ValueError):
            pass
    if compression is None:
        compression = sniff(body)
    headers: dict[str, Any] = {}
    if compression:
        from celerytool.codecs.compression import MIME, canonical

        try:
            headers["compression"] = MIME[canonical(compression)]
        except DecodeError as exc:
            return Message(size=size, error=str(exc), raw=data)
        try:
            plain = decompress(body, compression, limits.max_bytes)
        except DecodeError as exc:
            return Message(size=size, error=str(exc), raw=data, compression=headers["compression"])
    else:
        plain = body
    if content_type is None:
        content_type = _sniff_content_type(plain) if plain else "application/json"
    elif "/" not in content_type:
        content_type = SERIALIZER_CONTENT_TYPE.get(content_type, content_type)
    encoding = "binary" if content_type in ("application/x-python-serialize", "application/x-msgpack") else "utf-8"
    return decode_payload(body, content_type, encoding, headers, {}, size=size, raw=data, limits=limits)
