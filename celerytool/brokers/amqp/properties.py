"""The AMQP basic properties celerytool reads and writes, and every conversion of them.

One list (``PROPERTIES``) and the ways a delivery's properties travel:
shown in ``Message.properties`` and decoded (``to_message``), kept in an
export record (``to_record``, also what another broker is given: see
brokers/transfer.py; ``from_record``), or published (``from_outgoing``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from celerytool.brokers.base import AMQP_CONTENT_PROPERTIES, AMQP_OTHER_PROPERTIES
from celerytool.codecs import decode_payload
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import DataError, UsageError
from celerytool.model import Message, OutgoingMessage

Delivery = tuple[Any, Any, bytes]  # (Basic.Deliver or GetOk, BasicProperties, body)

# Every AMQP basic property besides headers, as pika (and kombu) name them (the export format's list).
CONTENT = AMQP_CONTENT_PROPERTIES
SHOWN = AMQP_OTHER_PROPERTIES
PROPERTIES = CONTENT + SHOWN
# What `send` / a message from another broker may set: user_id must match the connection's
# user and the timestamp / cluster id are the broker's to give, so those are never copied.
PUBLISHED = ("delivery_mode", "priority", "correlation_id", "reply_to", "expiration",
             "message_id", "type", "app_id")


def shown(props: Any) -> dict[str, Any]:
    """The properties shown in ``Message.properties`` (content type / encoding have fields of their own)."""
    return {k: v for k in SHOWN if (v := getattr(props, k, None)) is not None}


def to_message(queue: str, position: int, delivery: Delivery, limits: Limits = DEFAULT_LIMITS) -> Message:
    """Decode one delivery (body = the serialized payload, headers = Celery's headers)."""
    method, props, body = delivery
    properties = shown(props)
    properties["delivery_info"] = {"exchange": method.exchange, "routing_key": method.routing_key}
    headers = props.headers if isinstance(props.headers, dict) else {}
    m = decode_payload(body, props.content_type, props.content_encoding, headers, properties,
                       queue=queue, position=position, priority=props.priority, size=len(body),
                       raw=body, limits=limits, redelivered=bool(getattr(method, "redelivered", False)))
    if "x-death" in headers:
        history = dead_letter_history(headers)
        if history is not None:
            m.extra["x_death"] = history
    return m


def task_and_id(props: Any) -> tuple[str, str] | None:
    """(task, id) from protocol 2 headers, without touching the body; None for protocol 1."""
    headers = props.headers
    if headers.__class__ is dict:
        task, tid = headers.get("task"), headers.get("id")
        if task.__class__ is str and tid.__class__ is str:
            return task, tid
    return None


def to_record(props: Any) -> dict[str, Any]:
    """Every property of a delivery that is set, headers included (an export record's ``amqp``)."""
    out = {k: v for k in PROPERTIES if (v := getattr(props, k, None)) is not None}
    if props.headers is not None:
        out["headers"] = props.headers
    return out


def from_record(meta: dict[str, Any]) -> Any:
    """pika BasicProperties from an export record's ``amqp`` field (tagged JSON values)."""
    import pika

    values = {k: untag(meta[k]) for k in (*PROPERTIES, "headers") if meta.get(k) is not None}
    try:
        return pika.BasicProperties(**values)
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad AMQP properties in export record: {exc}") from None


def from_outgoing(m: OutgoingMessage) -> Any:
    """pika BasicProperties for a message built by `send` or taken from another broker."""
    import pika

    p = m.properties
    priority = p.get("priority")
    if priority is not None and not 0 <= int(priority) <= 255:
        raise UsageError(f"priority {priority} is out of range on RabbitMQ: 0-255")
    values = {k: p[k] for k in PUBLISHED if p.get(k) is not None}
    values.setdefault("delivery_mode", 2)
    if "expiration" in values:
        values["expiration"] = str(values["expiration"])
    # headers: always a table, empty or not, as kombu sends it (a celery-node worker fails on a
    # message without one)
    return pika.BasicProperties(content_type=m.content_type, content_encoding=m.content_encoding,
                                headers=dict(m.headers or {}), **values)


def untag(value: Any) -> Any:
    """Undo ``to_jsonable`` for the types AMQP field tables carry (bytes, timestamps, decimals)."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__type__")
    if kind is None or set(value) != {"__type__", "__value__"}:
        return {k: untag(v) for k, v in value.items()}
    v = value["__value__"]
    if kind == "bytes":
        return str(v).encode("utf-8")
    if kind == "base64":
        import base64

        return base64.b64decode(v)
    if kind == "datetime":
        import datetime

        return datetime.datetime.fromisoformat(v)
    if kind == "decimal":
        import decimal

        return decimal.Decimal(v)
    if kind == "float":
        return float(v)
    return value


# -- dead letters ------------------------------------------------------------------------------
# The headers RabbitMQ adds when it dead-letters a message (x-first-death-* / x-last-death-*
# since 3.12/3.13); a message put back on its queue goes without them, as Celery's own
# retry publishes it (celery#9867: otherwise RabbitMQ's cycle detection can drop it).
DEATH_HEADERS = ("x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange",
                 "x-last-death-queue", "x-last-death-reason", "x-last-death-exchange")
MAX_DEATHS = 100  # x-death entries shown per message


def dead_letter_history(headers: Any) -> dict[str, Any] | None:
    """``x-death`` as shown (``Message.extra["x_death"]``): the latest entry's fields, and ``history``.

    RabbitMQ keeps one entry per (queue, reason), the most recent first, each
    with how many times it happened (``count``) and when it last did (``time``).
    """
    deaths = headers.get("x-death") if isinstance(headers, dict) else None
    if not isinstance(deaths, list):
        return None
    entries = [_death(d) for d in deaths[:MAX_DEATHS] if isinstance(d, dict)]
    if not entries:
        return None
    return {**entries[0], "history": entries}


def _death(d: dict[str, Any]) -> dict[str, Any]:
    when = d.get("time")
    count = d.get("count")
    keys = d.get("routing-keys")
    return {
        "queue": _text(d.get("queue")),
        "reason": _text(d.get("reason")),
        "count": count if isinstance(count, int) else None,
        "time": when.isoformat() if isinstance(when, (dt.datetime, dt.date)) else _text(when),
        "exchange": _text(d.get("exchange")),
        "routing_keys": [_text(k) for k in keys] if isinstance(keys, list) else [],
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def origin_queue(props: Any) -> str | None:
    """The queue a dead-lettered message came from: its first (latest) ``x-death`` entry's."""
    history = dead_letter_history(props.headers)
    return history["queue"] if history else None


def without_death_headers(props: Any) -> Any:
    """A copy of ``props`` without the dead-lettering headers (and nothing else changed)."""
    import pika

    values = {k: v for k in PROPERTIES if (v := getattr(props, k, None)) is not None}
    headers = {k: v for k, v in (props.headers or {}).items() if k not in DEATH_HEADERS}
    return pika.BasicProperties(headers=headers, **values)
