"""Broker adapters behind one interface (``base``); ``open_broker`` picks one from the URL.

The only module that imports both implementations."""

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
        from celerytool.brokers.amqp.broker import AmqpBroker

        return AmqpBroker(url, options)
    raise UsageError(f"{url.scheme}:// is not a broker URL")


__all__ = ["Broker", "BrokerOptions", "open_broker"]
