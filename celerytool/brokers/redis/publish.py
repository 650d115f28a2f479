"""Publish on Redis exactly as kombu's virtual transport does (wire-format sections 2.1, 3).

The envelope is ``Channel.prepare_message`` + ``_inplace_augment_message``;
routing is ``Channel._lookup`` over the ``_kombu.binding.<exchange>``
tables (``routing``), except that a fanout exchange is a PUBLISH on kombu's
fanout channel; a message lands in the priority list
``_q_for_pri`` names.  Messages are pipelined, consecutive ones for the same
list joined into one LPUSH (the same order as one LPUSH each).
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from celerytool.brokers.redis.routing import (
    BINDING_PERMANENT_PREFIX,
    BINDING_PREFIX,
    binding_member,
)
from celerytool.clients.redispy import pipelined
from celerytool.errors import CeleryToolError, ExitCode
from celerytool.ids import uuid4_strings
from celerytool.jsontext import quote as _quote
from celerytool.model import OutgoingMessage

if TYPE_CHECKING:
    from celerytool.brokers.redis.link import RedisLink

BATCH = 2000


class Unroutable(CeleryToolError):
    """No queue is bound for the message; ``sent`` messages before it were published."""

    exit_code = ExitCode.FAILURE

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


def _properties(message: OutgoingMessage, delivery_tag: str) -> dict[str, Any]:
    """``prepare_message`` + ``_inplace_augment_message``: the properties kombu stores."""
    props = {k: v for k, v in message.properties.items() if k != "priority"}
    props["delivery_info"] = {"exchange": message.exchange, "routing_key": message.routing_key}
    props["priority"] = message.properties.get("priority") or 0
    props["body_encoding"] = "base64"
    props["delivery_tag"] = delivery_tag
    return props


_MARK = "\x00celerytool-mark\x00"
_USUAL = ("correlation_id", "reply_to", "delivery_mode", "priority")  # what the builder sets, in order


def envelope(message: OutgoingMessage, delivery_tag: str, cache: dict[Any, Any] | None = None) -> str:
    """kombu's JSON envelope text, key for key and in kombu's order.

    With ``cache`` and headers the builder already encoded, the text around
    the per-message values (body, headers, correlation id, delivery tag) is
    encoded once per message shape and reused.
    """
    headers_text = getattr(message.headers, "json_text", None)
    if headers_text is not None and cache is not None:
        props = message.properties
        key: Any = None
        parts = None
        if tuple(props) == _USUAL:  # the builder's properties: the shape is the values after the id
            key = (message.content_encoding, message.content_type, message.exchange, message.routing_key,
                   props["reply_to"], props["delivery_mode"], props["priority"])
        elif next(iter(props), None) == "correlation_id":
            key = (message.content_encoding, message.content_type, message.exchange,
                   message.routing_key, tuple(props.items())[1:])
        if key is not None:
            try:
                parts = cache.get(key)
            except TypeError:  # an unhashable property value
                key = None
        if parts is None and key is not None:
            if len(cache) > 1000:
                cache.clear()
            text = json.dumps({
                "body": _MARK, "content-encoding": message.content_encoding,
                "content-type": message.content_type, "headers": _MARK,
                "properties": _properties(message, _MARK) | {"correlation_id": _MARK},
            })
            parts = cache[key] = tuple(text.split(json.dumps(_MARK)))
        if parts is not None and len(parts) == 5 and props["correlation_id"].__class__ is str:
            return "".join((parts[0], '"', b64encode(message.body).decode("ascii"), '"', parts[1],
                            headers_text, parts[2], _quote(props["correlation_id"]), parts[3],
                            '"', delivery_tag, '"', parts[4]))
    props = _properties(message, delivery_tag)
    env = {
        "body": b64encode(message.body).decode("ascii"),
        "content-encoding": message.content_encoding,
        "content-type": message.content_type,
        "headers": message.headers or {},
        "properties": props,
    }
    try:
        return json.dumps(env)
    except TypeError:  # datetimes, Decimals, ...: kombu's tagged JSON
        from kombu.utils.json import dumps

        return dumps(env)


class RedisPublisher:
    """Routes and LPUSHes messages over the broker's one connection."""

    def __init__(self, broker: RedisLink) -> None:
        self.broker = broker
        self.prefix = broker.prefix
        self.sep = broker.sep
        self.tables = broker.binding_tables()
        self.declared: set[str] = set()
        self.tags = uuid4_strings()
        self.keys: dict[tuple[str, Any], str] = {}  # (queue, priority) -> list key
        self.shapes: dict[Any, Any] = {}  # envelope text pieces per message shape

    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        b = self.broker
        with b.errors():
            client = b.client
            if isinstance(messages, (list, tuple)) and not messages:
                client.ping()  # nothing to send: still prove the broker answers
                return 0
            state = _Batch(client, b.confirm_writes)
            self.declared = set()  # per call: a failed (retried) pipeline must declare again
            sent = 0
            tags, shapes, run = self.tags, self.shapes, state.run
            for m in messages:
                text = envelope(m, next(tags), shapes)
                if m.exchange == "":
                    q = m.routing_key
                    if q not in self.declared:
                        self._declare(state, q)
                    if q == state.queue and m.properties.get("priority") == state.priority:
                        run.append(text)  # the list the message before went to: the same LPUSH
                        state.count += 1
                        if state.count >= BATCH:
                            sent += state.execute()
                        continue
                    queues = [q]
                else:
                    kind = self.tables.kind(m.exchange, m.exchange_type)
                    if kind == "fanout":  # PUB/SUB: nothing stored, say when nobody got it
                        sent += state.execute()
                        if not client.publish(self._fanout_topic(m.exchange, m.routing_key), text):
                            raise Unroutable(
                                f"unroutable: nobody subscribes to fanout exchange {m.exchange!r} (a "
                                f"fanout message is lost when no worker listens); {_published(sent)}", sent)
                        sent += 1
                        continue
                    queues = self.tables.route(m.exchange, m.routing_key, kind)
                    if not queues:
                        sent += state.execute()
                        raise Unroutable(
                            f"unroutable: no queue is bound to exchange {m.exchange!r} ({kind}) "
                            f"for routing key {m.routing_key!r}; {_published(sent)}", sent)
                priority = m.properties.get("priority")
                for q in queues:
                    key = self.keys.get((q, priority))
                    if key is None:
                        key = self.keys[(q, priority)] = b.bucket_key(q, b.priority_bucket(priority))
                    state.push(key, text)
                if len(queues) == 1:
                    state.queue, state.priority = queues[0], priority
                state.count += 1
                if state.count >= BATCH:
                    sent += state.execute()
            sent += state.execute()
        return sent

    # -- routing ------------------------------------------------------------------------
    def _declare(self, state: _Batch, queue: str) -> None:
        """What Celery's ``declare=[queue]`` leaves on Redis: the queue's binding."""
        if queue in self.declared:
            return
        self.declared.add(queue)
        member = binding_member(queue, self.sep)
        state.commands.append(("SADD", self.prefix + BINDING_PREFIX + queue, member))
        state.commands.append(("SADD", self.prefix + BINDING_PERMANENT_PREFIX + queue, member))

    def _fanout_topic(self, exchange: str, routing_key: str) -> str:
        # keyprefix_fanout '/{db}.' + exchange [+ '/' + routing_key] (fanout_patterns=True)
        topic = f"/{self.broker.url.db}.{exchange}"
        if routing_key:
            topic += "/" + routing_key
        return self.prefix + topic


def _published(sent: int) -> str:
    """What an unroutable message stopped: nothing, or what went before it."""
    if not sent:
        return "nothing was published"
    return f"{sent} message(s) before it were published, it and any after it were not"


class _Batch:
    """Pending LPUSH runs (and binding SADDs) of one pipelined round trip."""

    def __init__(self, client: Any, confirm: Any) -> None:
        self.client = client
        self.confirm = confirm  # raises when the writes may not survive a failover
        self.commands: list[tuple[str, ...]] = []
        self.key: str | None = None  # the list of the current run of messages
        self.queue: str | None = None  # its queue and priority, when one queue takes the run
        self.priority: Any = None
        self.run: list[str] = []  # one list throughout: the caller may append to it
        self.count = 0

    def push(self, key: str, text: str) -> None:
        if key != self.key:
            self._flush_run()
            self.key = key
        self.run.append(text)

    def _flush_run(self) -> None:
        if self.run:
            self.commands.append(("LPUSH", self.key, *self.run))  # type: ignore[arg-type]
            self.run.clear()
        self.key = self.queue = self.priority = None

    def execute(self) -> int:
        self._flush_run()
        count, self.count = self.count, 0
        if self.commands:
            commands, self.commands = self.commands, []
            pipelined(self.client, commands)
            self.confirm()
        return count
