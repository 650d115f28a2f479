"""What the Redis package's operations (ops, publish, unacked) need of the broker: a narrow
interface, so that they never import ``broker.py`` (which imports them). ``RedisBroker`` is the
one implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

from celerytool.brokers.base import BrokerOptions
from celerytool.brokers.redis.routing import BindingTables
from celerytool.model import OutgoingMessage
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from redis import Redis

_T = TypeVar("_T")


class RedisLink(Protocol):
    url: BrokerURL
    options: BrokerOptions
    warnings: list[str]
    prefix: str  # kombu's global_keyprefix
    sep: str  # kombu's priority separator
    steps: tuple[int, ...]  # priority steps, lowest first

    @property
    def client(self) -> Redis: ...

    def errors(self) -> AbstractContextManager[None]: ...  # redis-py errors -> one line

    def confirm_writes(self) -> None: ...

    def read(self, fn: Callable[[], _T]) -> _T: ...

    def bucket_key(self, queue: str, bucket: int) -> str: ...

    def bucket_keys(self, queue: str) -> list[tuple[int, str]]: ...

    def priority_bucket(self, priority: int | None) -> int: ...

    def binding_tables(self) -> BindingTables: ...

    def lengths(self, queue: str) -> list[tuple[int, str, int]]: ...

    def require_queue(self, queue: str, lengths: list[tuple[int, str, int]]) -> None: ...

    def check_destination(self, queue: str) -> None: ...

    def iter_list(self, key: str, length: int, limit: int | None) -> Iterator[bytes]: ...

    def publish(self, messages: Iterable[OutgoingMessage]) -> int: ...
