"""Messages crossing from one broker kind to the other (``move --to-broker``, ``import``).

Each broker stores a message its own way: kombu's Redis transport keeps a JSON
envelope (body, headers, properties, delivery_info); RabbitMQ keeps the body and
the AMQP properties and headers.  Within one kind a copy is byte-exact and each
broker package makes it itself.  Across kinds the message goes through the
broker-neutral ``OutgoingMessage`` made here, and the destination publishes it
as kombu would (``Broker.publish``: Redis routing and envelope, AMQP confirms).
This module knows both stored forms and imports neither broker package.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celerytool.brokers.base import AMQP_OTHER_PROPERTIES, Broker, ExportRecord
from celerytool.errors import DataError, DecodeError
from celerytool.model import OutgoingMessage

# kombu's per-delivery bookkeeping in a Redis envelope: meaningless once it leaves Redis
_REDIS_ONLY_PROPERTIES = ("delivery_info", "delivery_tag", "body_encoding")


def redis_envelope_to_outgoing(raw: bytes, queue: str) -> OutgoingMessage:
    """A kombu Redis envelope as the message an AMQP broker would have carried."""
    from celerytool.codecs.message import envelope_body, open_envelope

    try:
        env = open_envelope(raw)
        body = envelope_body(env)
    except DecodeError as exc:
        raise DataError(f"cannot republish a message that is not a kombu envelope: {exc}") from None
    props = {k: v for k, v in (env.get("properties") or {}).items() if k not in _REDIS_ONLY_PROPERTIES}
    return OutgoingMessage(body=body, content_type=env.get("content-type") or "application/json",
                           content_encoding=env.get("content-encoding") or "utf-8",
                           headers=env.get("headers") or {}, properties=props,
                           exchange="", routing_key=queue)


def amqp_to_outgoing(meta: dict[str, Any], body: bytes, queue: str) -> OutgoingMessage:
    """An AMQP message (its properties and headers as a dict) as another broker publishes it."""
    props = {k: meta[k] for k in AMQP_OTHER_PROPERTIES if meta.get(k) is not None}
    return OutgoingMessage(body=body, content_type=meta.get("content_type") or "application/json",
                           content_encoding=meta.get("content_encoding") or "utf-8",
                           headers=dict(meta.get("headers") or {}), properties=props,
                           exchange="", routing_key=queue)


def record_to_outgoing(record: ExportRecord, queue: str) -> OutgoingMessage:
    """An export record (or a message leaving its broker) as a neutral message for ``queue``."""
    if record.broker == "redis":
        return redis_envelope_to_outgoing(record.raw, queue)
    if record.broker == "amqp":
        return amqp_to_outgoing(record.amqp or {}, record.raw, queue)
    raise DataError(f"cannot republish a message exported from a {record.broker!r} broker")


def publish_across(dest: Broker, queue: str, records: Iterable[ExportRecord]) -> int:
    """Publish records of another broker kind to ``queue`` on ``dest``; returns once confirmed."""
    return dest.publish([record_to_outgoing(r, queue) for r in records])
