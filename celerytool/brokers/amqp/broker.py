"""RabbitMQ broker adapter: pika for AMQP 0-9-1, the management API for listings.

See shared/reference/celery-wire-format.md section 5.  A message body is the
raw serialized bytes (no envelope, no base64); Celery's headers are the AMQP
``application_headers``.  AMQP has no true peek: messages are fetched without
ack and returned with ``basic.nack(requeue=True)``, which marks them
redelivered; a connection that drops returns them by the broker's own rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from celerytool.brokers.amqp.budget import delivery_count
from celerytool.brokers.amqp.peek import Peek
from celerytool.brokers.amqp.properties import from_outgoing, to_message
from celerytool.brokers.base import (
    BrokerOptions,
    Capabilities,
    Tick,
    is_delay_queue,
    is_internal_queue,
    natural_key,
)
from celerytool.clients.amqp import Channel, Connection, amqp_errors, connect, probe, server_version
from celerytool.clients.management import ManagementAPI, ManagementError
from celerytool.errors import BrokerUnavailable, CeleryToolError, NotFound
from celerytool.model import Binding, Message, OutgoingMessage, PauseRecord, QueueInfo
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from celerytool.brokers.amqp.budget import Budget
    from celerytool.brokers.amqp.ops import AmqpOps
    from celerytool.brokers.census import Census
    from celerytool.selection import Selection

EXACT_AUTO_MAX_QUEUES = 50  # up to this many queues, `queues` counts by passive declare by default


IN_FLIGHT_NOTE = ("unacked and requeue are Redis-only: RabbitMQ returns unacknowledged messages "
                  "to their queue itself when the consumer's channel closes")


class AmqpBroker:
    kind = "amqp"
    capabilities = Capabilities("RabbitMQ", in_flight_note=IN_FLIGHT_NOTE, dead_letters=True)

    def __init__(self, url: BrokerURL, options: BrokerOptions) -> None:
        self.url = url
        self.options = options
        self.warnings: list[str] = []
        self.connected_url = url.without_alternates()
        self._confirmed: dict[int, weakref.ref[OutgoingMessage]] = {}
        self._answered = False  # the AMQP port was seen to answer (see _management_rows)
        self._budgets: dict[str, Budget] = {}
        self.delayed_waiting = 0  # messages in the delayed-delivery levels, as the last listing counted

    # -- connections ------------------------------------------------------------------
    @cached_property
    def connection(self) -> Connection:
        conn, self.connected_url = connect(self.url, connect_timeout=self.options.connect_timeout)
        return conn

    def channel(self) -> Channel:
        conn = self.__dict__.get("connection")
        if conn is not None and not conn.is_open:  # lost: reconnect (a retry after a drop)
            del self.__dict__["connection"]
        with self.errors("opening a channel"):
            return self.connection.channel()

    def server_version(self) -> tuple[int, ...]:
        """RabbitMQ's version from the connection's server properties, e.g. (4, 0, 5)."""
        return server_version(self.connection)

    def budget(self, queue: str) -> Budget:
        """What returning a message of ``queue`` costs here (budget.Budget; read once per queue)."""
        if queue not in self._budgets:
            from celerytool.brokers.amqp.budget import read_budget

            self._budgets[queue] = read_budget(self, queue)
        return self._budgets[queue]

    def errors(self, doing: str = "") -> AbstractContextManager[None]:
        return amqp_errors(self.connected_url, doing)

    def ops(self) -> AmqpOps:
        """purge, move, export and import on this broker."""
        from celerytool.brokers.amqp.ops import AmqpOps

        return AmqpOps(self)

    def close(self) -> None:
        conn = self.__dict__.pop("connection", None)
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except Exception:  # closing a dead connection: nothing left to return
                pass

    @cached_property
    def management(self) -> ManagementAPI:
        return ManagementAPI.for_broker(self._answering_url(), self.options.management_url,
                                        self.options.connect_timeout)

    def _answering_url(self) -> BrokerURL:
        """The node the management API is derived from: through a failover list, the node
        connected to (or the first whose AMQP port answers), not a stopped first node."""
        if not self.url.alternates or self.options.management_url:
            return self.url.without_alternates()
        if "connection" in self.__dict__:
            return self.connected_url
        one = probe(self.url, connect_timeout=self.options.connect_timeout)
        self._answered = True
        return one

    def _management_rows(self, what: str) -> list[dict[str, Any]]:
        """One listing from the management API; ManagementError when it is down.

        The broker's own port must answer first (BrokerUnavailable otherwise).
        """
        if not self._answered and "connection" not in self.__dict__:
            probe(self.url, connect_timeout=self.options.connect_timeout)
            self._answered = True
        vhost = self.url.vhost
        try:
            rows = getattr(self.management, what)(vhost)
        except ManagementError as exc:
            if exc.status == 404:
                raise BrokerUnavailable(f"vhost {vhost!r} not found by the management API at "
                                        f"{self.management}") from None
            raise
        return rows

    # -- queues -----------------------------------------------------------------------
    def queues(self, names: Iterable[str] = (), scan: bool | None = None,
               exact: bool | None = None) -> list[QueueInfo]:
        named = list(dict.fromkeys(names))
        try:
            rows = self._management_rows("queues")
        except ManagementError as exc:
            return self._queues_by_declare(named or ["celery"], exc)
        listed = {str(r.get("name")): r for r in rows}
        # from the statistics sample: no call more (`queues --delayed` reads them)
        self.delayed_waiting = sum(int(r.get("messages_ready") or 0) + int(r.get("messages_unacknowledged") or 0)
                                   for n, r in listed.items() if is_delay_queue(n))
        keep = [n for n in sorted(listed, key=natural_key) if self.options.include_internal or not is_internal_queue(n)
                or n in named]
        # The API's counts are its last statistics sample (taken every 5 s by default): exact
        # counts by passive declare when asked (--exact), or by default when there are few queues.
        # A queue created after the last sample has no counts in it at all: declared in any case.
        if exact is None:
            exact = len(keep) <= EXACT_AUTO_MAX_QUEUES
        declare = keep if exact else [n for n in keep if "messages_ready" not in listed[n]]
        # another connection's exclusive queue (a worker's pidbox / event queue) refuses a passive
        # declare (405 RESOURCE_LOCKED): the sample's counts stand for it
        declare = [n for n in declare if not listed[n].get("exclusive")]
        live = self._passive_counts(declare) if declare else {}
        from dataclasses import replace

        from celerytool.brokers.amqp.pauses import paused_in

        paused = paused_in(listed)
        out = [self._queue_info(listed[n], live.get(n)) for n in keep]
        out = [replace(q, paused=True) if q.name in paused else q for q in out]
        out += [QueueInfo(name=n, messages=0, exists=False) for n in named if n not in listed]
        return out

    # -- native delayed delivery (Celery 5.5+; see delayed.py) -----------------------------
    def delayed_route(self, exchange: str, routing_key: str, queue: str | None,
                      seconds: int) -> tuple[tuple[str, str] | None, str]:
        """``((exchange, routing key), "")`` to send a task due in ``seconds`` as Celery's
        ``send_task`` would through native delayed delivery, or ``(None, why not)``."""
        from celerytool.brokers.amqp.delayed import (
            ENTRY_EXCHANGE,
            delay_routing_key,
            native_destination,
        )

        try:
            bindings = self._management_rows("bindings")
            exchanges = self._management_rows("exchanges")
        except ManagementError as exc:
            return None, f"management API unavailable ({exc}): cannot tell"
        key, why = native_destination(bindings, exchanges, exchange, routing_key, queue)
        if key is None:
            return None, why
        return (ENTRY_EXCHANGE, delay_routing_key(seconds, key)), ""

    # -- pause records (celerytool pause / resume; see pauses.py) ---------------------------
    def pause_records(self, queues: Iterable[str] | None = None) -> dict[str, PauseRecord]:
        from celerytool.brokers.amqp import pauses

        if queues is None:
            try:
                queues = sorted(pauses.paused_in(str(r.get("name")) for r in self._management_rows("queues")))
            except ManagementError:  # the commands that list say so themselves (queues, workers)
                return {}
        return pauses.read(self, queues)

    def save_pause_record(self, queue: str, record: PauseRecord | None) -> None:
        from celerytool.brokers.amqp.pauses import save

        save(self, queue, record)

    @staticmethod
    def _queue_info(row: dict[str, Any], live: tuple[int, int] | None) -> QueueInfo:
        arguments = row.get("arguments") if isinstance(row.get("arguments"), dict) else {}
        sampled = row.get("messages_unacknowledged")
        unacked = None if sampled is None else int(sampled or 0)  # only the API knows it: sampled
        if live is not None:
            messages, consumers, counted = live[0], live[1], "exact"
        else:
            messages = int(row.get("messages_ready") or 0)
            consumers = int(row.get("consumers") or 0)
            counted = "sample"
        head: Any = row.get("head_message_timestamp")  # set only when the first message has a timestamp
        return QueueInfo(name=str(row.get("name")), messages=messages, unacked=unacked,
                         consumers=consumers, type=str(row.get("type") or "classic"),
                         arguments=dict(arguments or {}), counted=counted,
                         head_timestamp=float(head) if type(head) in (int, float) and messages else None,
                         **_replicas(row))

    def _queues_by_declare(self, names: list[str], exc: ManagementError) -> list[QueueInfo]:
        counts = self._passive_counts(names)  # first: if AMQP fails too, its error is the one line
        shown = ", ".join(repr(n) for n in names)
        self.warnings.append(
            f"management API at {self.management} unavailable ({exc}): cannot list the queues of "
            f"vhost {self.url.vhost!r}; showing only {shown} by passive declare (ready messages and "
            "consumers; no unacked counts, types or arguments). Give --management-url if it runs elsewhere.")
        return [QueueInfo(name=n, messages=counts[n][0], consumers=counts[n][1], counted="exact") if n in counts
                else QueueInfo(name=n, messages=0, exists=False) for n in names]

    def passive_counts(self, names: list[str]) -> dict[str, tuple[int, int]]:
        return self._passive_counts(names)

    def _passive_counts(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """(ready, consumers) by passive queue.declare; missing queues are left out."""
        import pika.exceptions as pex

        out: dict[str, tuple[int, int]] = {}
        ch = self.channel()
        for name in names:
            with self.errors(f"declaring queue {name!r} passively"):
                try:
                    ok = ch.queue_declare(name, passive=True).method
                except pex.ChannelClosedByBroker as exc:  # the channel is closed after this
                    if exc.reply_code != 404:
                        self.warnings.append(f"queue {name!r}: ({exc.reply_code}) {exc.reply_text}")
                    ch = self.connection.channel()
                    continue
            out[name] = (int(ok.message_count), int(ok.consumer_count))
        if ch.is_open:
            ch.close()
        return out

    def queue_type(self, queue: str) -> str | None:
        """classic, quorum or stream, from the management API; None when it cannot say."""
        try:
            row = self.management.queue(self.url.vhost, queue)
        except ManagementError:
            return None
        return str(row.get("type") or "classic") if isinstance(row, dict) else None

    def counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of ``queue`` now (passive declare); NotFound when it does not exist."""
        counts = self._passive_counts([queue])
        if queue not in counts:
            raise NotFound(f"no queue named {queue!r} in vhost {self.url.vhost!r} on "
                           f"{self.connected_url.redacted()} (`celerytool queues` lists the known ones)")
        return counts[queue]

    def depth(self, queue: str) -> int:
        """Ready messages in ``queue`` (passive declare); NotFound when it does not exist."""
        return self.counts(queue)[0]

    def check_destination(self, queue: str) -> None:
        self.depth(queue)  # NotFound before anything moves

    # -- bindings ---------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        try:
            rows = self._management_rows("bindings")
            types = {str(e.get("name")): str(e.get("type")) for e in self._management_rows("exchanges")}
        except ManagementError as exc:
            raise BrokerUnavailable(
                f"RabbitMQ bindings can only be listed by the management API, and {self.management} "
                f"is unavailable: {exc} (enable rabbitmq_management or give --management-url)") from None
        out: list[Binding] = []
        skipped = 0
        for r in rows:
            if r.get("destination_type") != "queue":
                skipped += 1
                continue
            exchange = str(r.get("source") or "")
            key = str(r.get("routing_key") or "")
            etype = types.get(exchange, "direct")
            out.append(Binding(exchange=exchange, routing_key=key, pattern=key if etype == "topic" else "",
                               queue=str(r.get("destination")), exchange_type=etype))
        if skipped:
            self.warnings.append(f"left out {skipped} exchange-to-exchange binding(s)")
        out.sort(key=lambda b: (b.exchange, b.queue, b.routing_key))
        return out

    # -- peek -------------------------------------------------------------------------
    def peek(self, queue: str, limit: int | None = 10) -> Iterator[Message]:
        """Fetch up to ``limit`` messages unacked on one channel, then nack them all back.

        The number to wait for is the ready count at the start, so messages
        published during the peek are not waited for, and a consumer that
        takes messages meanwhile only shortens the listing (see peek.py).
        """
        ready, others = self.counts(queue)  # now, not at the first next(): errors come before any output
        want = ready if limit is None else min(ready, limit)
        return self._peek(queue, want, ready, others)

    def census(self, queue: str, by: str, selection: Selection, tick: Tick | None = None) -> Census:
        """``summary`` over a peek of the whole queue (RabbitMQ has no read-only listing)."""
        from celerytool.brokers.census import census_of_messages

        selection.require_no_age("queued RabbitMQ messages")
        census = census_of_messages(self.peek(queue, None), by, selection, tick)
        self.warnings.append("RabbitMQ has no read-only listing: the messages were fetched without ack and "
                             "returned with nack(requeue=True), as peek does (now marked redelivered; a "
                             "consumer running meanwhile may have received some)")
        return census

    def _peek(self, queue: str, want: int, ready: int, others: int) -> Iterator[Message]:
        if want <= 0:
            return
        peek = Peek(self, queue, want, ready, others)
        deliveries = peek.deliveries()
        budget = peek.budget if peek.budget.queue_type in ("quorum", None) else None
        try:
            for position, delivery in enumerate(deliveries):
                m = to_message(queue, position, delivery, self.options.limits)
                if budget is not None:
                    # as read, before this peek's own return; the limit of the queue (None: none)
                    m.extra["delivery_count"] = delivery_count(delivery[1])
                    m.extra["delivery_limit"] = budget.limit
                    m.extra["requeued_at_tail"] = budget.guarded and budget.at_risk(delivery[1])
                yield m
        finally:
            deliveries.close()  # stops the consumer before anything is returned
            peek.finish()

    # -- publish ----------------------------------------------------------------------
    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """basic.publish with publisher confirms and mandatory: nothing is dropped silently.

        Messages confirmed by an earlier, interrupted call with the same
        objects (a retry after the connection dropped) are not sent twice.
        """
        import pika.exceptions as pex

        ch = self.publisher()
        sent = 0
        for m in messages:
            ref = self._confirmed.get(id(m))
            if ref is not None and ref() is m:
                sent += 1
                continue
            where = f"exchange {m.exchange!r}" if m.exchange else "the default exchange"
            props = from_outgoing(m)
            with self.errors(f"publishing to {where}"):
                try:
                    ch.basic_publish(m.exchange, m.routing_key, m.body, props, mandatory=True)
                except pex.UnroutableError:
                    raise CeleryToolError(
                        f"not sent: message with routing key {m.routing_key!r} to {where} is unroutable "
                        f"(no queue bound to it in vhost {self.url.vhost!r}: start a worker for the "
                        f"queue or declare it first); {sent} sent before it") from None
                except pex.NackError:
                    raise CeleryToolError(f"not sent: RabbitMQ refused the message to {where} "
                                          f"(basic.nack); {sent} sent before it") from None
                except pex.ChannelClosedByBroker as exc:
                    raise CeleryToolError(f"not sent: ({exc.reply_code}) {exc.reply_text}; "
                                          f"{sent} sent before it") from None
            self._confirmed[id(m)] = weakref.ref(m)
            sent += 1
        self._confirmed.clear()  # all confirmed: nothing left for a retry to skip
        return sent

    def publisher(self) -> Channel:
        """One channel in confirm mode, kept for every publish() of this adapter."""
        ch = self.__dict__.get("_publish_channel")
        if ch is None or not ch.is_open:
            ch = self.channel()
            with self.errors("publishing"):
                ch.confirm_delivery()
            self._publish_channel = ch
        return ch


def _replicas(row: dict[str, Any]) -> dict[str, Any]:
    """A quorum queue's leader, members and online members as the management API lists them."""
    if row.get("type") != "quorum":
        return {}

    def nodes(key: str) -> tuple[str, ...]:
        value = row.get(key)
        return tuple(sorted(str(v) for v in value)) if isinstance(value, list) else ()

    leader = row.get("leader") or row.get("node")
    return {"leader": str(leader) if leader else None, "members": nodes("members"), "online": nodes("online")}
