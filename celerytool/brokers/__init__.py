"""Broker adapters behind one interface; ``open_broker`` picks one from the URL."""

from __future__ import annotations

from celerytool.brokers.base import Broker, BrokerOptions
from celerytool.errors import UsageError
from celerytool.urls import BrokerURL


def open_broker(url: BrokerURL, options: BrokerOptions | None = None) -> Broker:
    options = options or BrokerOptions()
    if url.kind == "redis":
        from celerytool.brokers.redis.broker import RedisBroker

        return RedisBroker(url, options)
    if url.kind == "amqp":
        try:
            from celerytool.brokers.amqp.broker import AmqpBroker  # type: ignore[import-not-found]
        except ImportError:
            raise UsageError("RabbitMQ (amqp://) brokers are not supported yet") from None
        return AmqpBroker(url, options)
    raise UsageError(f"{url.scheme}:// is not a broker URL")


__all__ = ["Broker", "BrokerOptions", "open_broker"]
