"""What the RabbitMQ package's parts (peek, consume, walks, budget, settle, ops) need of the
broker: a narrow interface, so that they never import ``broker.py`` (which imports them).
``AmqpBroker`` is the one implementation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from celerytool.brokers.base import BrokerOptions, Capabilities
from celerytool.clients.amqp import Channel, Connection
from celerytool.clients.management import ManagementAPI
from celerytool.model import Message, OutgoingMessage
from celerytool.urls import BrokerURL


class DeliveryBudget(Protocol):
    """What returning a message of a queue costs (``budget.Budget``, which reads the queue
    through this link: naming it here would be an import cycle)."""

    @property
    def queue_type(self) -> str | None: ...

    @property
    def limit(self) -> int | None: ...

    @property
    def guarded(self) -> bool: ...

    def at_risk(self, props: Any) -> bool: ...  # props: pika's BasicProperties

    def note(self) -> str | None: ...


class AmqpLink(Protocol):
    url: BrokerURL
    connected_url: BrokerURL  # the node of a failover list that answered
    options: BrokerOptions
    warnings: list[str]
    capabilities: Capabilities

    @property
    def connection(self) -> Connection: ...

    @property
    def management(self) -> ManagementAPI: ...

    def channel(self) -> Channel: ...  # reconnects when the connection was lost

    def errors(self, doing: str = "") -> AbstractContextManager[None]: ...  # pika errors -> one line

    def server_version(self) -> tuple[int, ...]: ...

    def budget(self, queue: str) -> DeliveryBudget: ...

    def counts(self, queue: str) -> tuple[int, int]: ...

    def depth(self, queue: str) -> int: ...

    def passive_counts(self, names: list[str]) -> dict[str, tuple[int, int]]: ...

    def queue_type(self, queue: str) -> str | None: ...

    def check_destination(self, queue: str) -> None: ...

    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]: ...

    def publish(self, messages: Iterable[OutgoingMessage]) -> int: ...

    def publisher(self) -> Channel: ...  # the channel in confirm mode that publish() uses
