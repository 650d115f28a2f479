"""Remove a queue kombu's Redis transport made for us: its binding rows and its lists.

kombu removes them itself when all goes well.  A client stopped in between
(Ctrl-C while collecting replies, SIGTERM, a lost connection) leaves the
reply queue's row in ``_kombu.binding.reply.celery.pidbox``, and late replies
then land in a ``<oid>.reply.celery.pidbox`` list with no TTL (celery#6089);
an event receiver leaves its ``celeryev.<id>`` row (events are pub/sub on
Redis, so no list grows there).  Rows are removed first, so nothing new is
routed there, then the lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, cast

from celerytool.kombu_layout import (
    BINDING_DEADLINES,
    BINDING_PERMANENT_PREFIX,
    binding_key,
    priority_key,
)

if TYPE_CHECKING:
    from redis import Redis


class BrokerSettings(Protocol):
    """kombu's Redis key layout and the timeouts, as a ControlOptions or the CLI's
    BrokerOptions gives them."""

    @property
    def global_keyprefix(self) -> str: ...

    @property
    def sep(self) -> str: ...

    @property
    def priority_steps(self) -> Iterable[int]: ...

    @property
    def connect_timeout(self) -> float: ...

    @property
    def management_url(self) -> str | None: ...


def drop_redis_queue(client: Redis, options: BrokerSettings, exchange: str | None, queue: str) -> None:
    """SREM ``queue``'s rows from ``exchange``'s binding sets (when given); DEL its lists.

    ``options`` gives ``global_keyprefix``, ``sep`` and ``priority_steps`` (a ControlOptions).
    """
    prefix, sep = options.global_keyprefix, options.sep
    if exchange is not None:
        table = binding_key(exchange, prefix)
        permanent = f"{prefix}{BINDING_PERMANENT_PREFIX}{exchange}"
        wanted = queue.encode()
        for key in (table, permanent):
            members = cast("set[bytes]", client.smembers(key))  # our client decodes no replies
            rows = [r for r in members if r.split(sep.encode("latin-1"))[-1] == wanted]
            if rows:
                client.srem(key, *rows)
        if not client.exists(table):
            # kombu's sweep would drop this deadline later; the table it guards is gone
            client.zrem(prefix + BINDING_DEADLINES, exchange)
    lists = [priority_key(queue, 0, sep, prefix)] + [priority_key(queue, step, sep, prefix)
                                                     for step in options.priority_steps if step]
    client.delete(*lists)
