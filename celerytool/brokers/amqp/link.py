"""What the RabbitMQ package's parts (peek, consume, walks, budget, settle, ops) need of the
broker: a narrow interface, so that they never import ``broker.py`` (which imports them).
``AmqpBroker`` is the one implementation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from celerytool.brokers.base import BrokerOptions, Capabilities
from celerytool.clients.management import ManagementAPI
from celerytool.model import Message, OutgoingMessage
from celerytool.urls import BrokerURL


class AmqpLink(Protocol):
    url: BrokerURL
    connected_url: BrokerURL  # the node of a failover list that answered
    options: BrokerOptions
    warnings: list[str]
    capabilities: Capabilities

    @property
    def connection(self) -> Any: ...  # pika.BlockingConnection

    @property
    def management(self) -> ManagementAPI: ...

    def channel(self) -> Any: ...  # a pika channel; reconnects when the connection was lost

    def errors(self, doing: str = "") -> Any: ...  # a context manager: pika errors -> one line

    def server_version(self) -> tuple[int, ...]: ...

    def budget(self, queue: str) -> Any: ...  # budget.Budget

    def counts(self, queue: str) -> tuple[int, int]: ...

    def depth(self, queue: str) -> int: ...

    def passive_counts(self, names: list[str]) -> dict[str, tuple[int, int]]: ...

    def queue_type(self, queue: str) -> str | None: ...

    def check_destination(self, queue: str) -> None: ...

    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]: ...

    def publish(self, messages: Iterable[OutgoingMessage]) -> int: ...

    def publisher(self) -> Any: ...  # the channel in confirm mode that publish() uses
