"""Build the message Celery would publish for a ``TaskSpec``, with Celery and kombu.

Headers, properties and body come from Celery's own ``as_task_v2`` /
``as_task_v1`` on a private Celery app (created from the broker URL only,
never the user's app); serialization and compression from kombu.  Routing
follows ``AMQP.send_task_message``.  For bulk sends a message is built once
per distinct task name + options (a *template*) and only the per-task
fields (id, root_id, args, kwargs and their reprs) are filled in afterwards,
which gives the same bytes at a fraction of the cost.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from typing import Any, Protocol

from celerytool.errors import UsageError
from celerytool.ids import uuid4
from celerytool.jsontext import make_celery_dumps as make_dumps
from celerytool.jsontext import quote as _quote
from celerytool.model import OutgoingMessage
from celerytool.sending.spec import TaskSpec

_PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


class MessageBuilder:
    """Turns ``TaskSpec`` into ``OutgoingMessage`` exactly as ``app.send_task`` would."""

    def __init__(self, broker_url: str | None = None) -> None:
        from celerytool.clients.celery_app import bare_app

        self.app = bare_app(broker_url)
        self.amqp = self.app.amqp
        self.conf = self.app.conf
        self.reply_to: str = self.app.thread_oid
        self._templates: dict[Any, Template] = {}

    # -- routing: AMQP.send_task_message's rules ------------------------------------------
    def route(self, spec: TaskSpec) -> tuple[str, str]:
        """(exchange, routing_key) as Celery computes them, anonymous-exchange rewrite included."""
        queue_name, exchange, routing_key = spec.queue, spec.exchange, spec.routing_key
        if queue_name is None and exchange is None:
            queue_name = self.conf.task_default_queue
        queue = self.amqp.queues[queue_name] if queue_name else None
        exchange_type = spec.exchange_type or (queue.exchange.type if queue is not None else "direct")
        if (not exchange or not routing_key) and exchange_type == "direct":
            exchange, routing_key = "", queue_name
        elif exchange is None:
            assert queue is not None
            exchange = queue.exchange.name or self.conf.task_default_exchange
            routing_key = routing_key or queue.routing_key or self.conf.task_default_routing_key
        if exchange == "" and not routing_key:
            raise UsageError("no queue to send to: give --queue, or --exchange with --routing-key")
        return exchange or "", routing_key or ""

    # -- building -----------------------------------------------------------------------
    def template(self, spec: TaskSpec) -> Template:
        """The template for everything in ``spec`` but id, args and kwargs (cached)."""
        key = _template_key(spec)
        tmpl = self._templates.get(key)
        if tmpl is None:
            tmpl = self._templates[key] = Template(self, spec)
        return tmpl

    def build(self, spec: TaskSpec) -> OutgoingMessage:
        return self.template(spec).fill(spec.task_id or uuid4(), spec.args, spec.kwargs)

    def signatures(self, names: tuple[str, ...]) -> list[Any] | None:
        # maybe_list(link) in send_task: a list of signatures, or None
        return [self.app.signature(n) for n in names] if names else None

    def celery_message(self, spec: TaskSpec, task_id: str, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> CeleryMessage:
        """Celery's own ``as_task_v2`` / ``as_task_v1`` result for ``spec``."""
        make = self.amqp.task_protocols[spec.protocol]
        try:
            return make(
                task_id, spec.name, args, kwargs, spec.countdown, spec.eta, None, None,
                spec.expires, 0, None, self.signatures(spec.link), self.signatures(spec.link_error),
                self.reply_to, spec.time_limit, spec.soft_time_limit, False, None, None, None,
                None, ignore_result=None,
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(f"celery refused the task: {exc}") from None

    def expiration_ms(self, expires: float | _dt.datetime | None) -> str | None:
        """The ``expiration`` property send_task derives from ``expires`` (ms, as text)."""
        if expires is None:
            return None
        if isinstance(expires, _dt.datetime):
            seconds = (expires - self.app.now()).total_seconds()
        else:
            seconds = float(expires)
        return str(int(max(seconds, 0) * 1000))


def _template_key(spec: TaskSpec) -> tuple[object, ...]:
    return (spec.name, spec.countdown, spec.eta, spec.expires, spec.queue, spec.exchange,
            spec.routing_key, spec.exchange_type, spec.priority, spec.serializer, spec.compression,
            spec.protocol, json.dumps(spec.headers, sort_keys=True, default=repr), spec.time_limit,
            spec.soft_time_limit, spec.link, spec.link_error)


class CeleryMessage(Protocol):
    """What Celery's ``amqp.as_task_v2`` / ``as_task_v1`` return (its ``task_message`` tuple)."""

    @property
    def headers(self) -> dict[str, Any]: ...
    @property
    def body(self) -> Any: ...  # (args, kwargs, embed) for protocol 2, a dict for protocol 1


PER_TASK = ("id", "root_id", "parent_id", "argsrepr", "kwargsrepr")  # header values filled per message


class Template:
    """One Celery-built message with the per-task fields left to fill."""

    def __init__(self, builder: MessageBuilder, spec: TaskSpec) -> None:
        from kombu.compression import compress
        from kombu.serialization import dumps

        self.builder = builder
        self.spec = spec
        self.exchange, self.routing_key = builder.route(spec)
        self.dumps = dumps
        # kombu's json serializer is json.dumps(cls=kombu's JSONEncoder); one encoder
        # instance gives the same text without building an encoder per message.
        self.json_encode = _kombu_json_dumps() if spec.serializer == "json" else None
        self.compress = compress if spec.compression else None
        # countdown / relative expires make eta and expires depend on the send time:
        # those messages are built whole by Celery each time.
        self.dynamic = bool(spec.countdown) or isinstance(spec.expires, (int, float))
        message = builder.celery_message(spec, _PLACEHOLDER, (), {})
        self.headers: dict[str, Any] = message.headers
        self.body = message.body
        self.eta = _field(message, "eta")
        self.expires = _field(message, "expires")
        self.last_times: tuple[str | None, str | None] = (self.eta, self.expires)
        self.repr_max = (builder.amqp.argsrepr_maxsize, builder.amqp.kwargsrepr_maxsize,
                         builder.app.conf.task_repr_maxlevels)
        self.json_parts = self._json_parts() if spec.protocol == 2 and not self.dynamic else None
        # the headers' text around the per-task values, ready for one join; the object's
        # closing brace apart, for headers added at the end (``extra``)
        self.json_open = self.json_parts[-1][:-1] if self.json_parts else ""
        self.embed_json = (self.json_encode(self.body[2])
                           if self.json_encode is not None and spec.protocol == 2 and not self.dynamic else None)

    def _json_parts(self) -> list[str] | None:
        """The JSON text of the final headers, cut where the per-task values go.

        The Redis adapter writes ``EncodedHeaders.json_text`` instead of
        encoding the headers again; it is what ``json.dumps(headers)`` gives.
        """
        final = dict(self.headers)
        for name in PER_TASK:
            final[name] = f"\x00celerytool-{name}\x00"
        final.update(self.spec.headers)
        self.part_fields = tuple(k for k in final if k in PER_TASK)  # in the headers' own order
        marks = [f"\x00celerytool-{name}\x00" for name in self.part_fields]
        if len(marks) != len(PER_TASK):
            return None
        if self.spec.compression:
            from kombu.compression import get_encoder

            final["compression"] = get_encoder(self.spec.compression)[1]
        try:
            text = json.dumps(final)
        except TypeError:
            return None
        parts = []
        for mark in marks:
            head, sep, text = text.partition(json.dumps(mark))
            if not sep:
                return None  # a user header replaced a per-task field
            parts.append(head)
        return parts + [text]

    def fill(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, parent_id: str | None = None,
             extra: dict[str, Any] | None = None, texts: ArgTexts | None = None) -> OutgoingMessage:
        """The message for one task; ``parent_id`` and ``extra`` headers per message (``retry``);
        ``texts``: ``arg_texts(args, kwargs)``, worked out ahead."""
        spec = self.spec
        if texts is not None and self.embed_json is None:  # not a JSON message of a fixed shape
            texts = None
        if self.dynamic:
            message = self.builder.celery_message(spec, task_id, args, kwargs)
            headers, body = message.headers, message.body
            self.last_times = (_field(message, "eta"), _field(message, "expires"))
        elif spec.protocol == 2:
            encoded = EncodedHeaders(self.headers) if self.json_parts else None
            headers = encoded if encoded is not None else dict(self.headers)
            headers["id"] = headers["root_id"] = task_id
            if texts is not None:
                argsrepr = headers["argsrepr"] = texts[0]
                kwargsrepr = headers["kwargsrepr"] = texts[1]
            else:
                argsrepr = headers["argsrepr"] = self._repr(args, self.repr_max[0])
                kwargsrepr = headers["kwargsrepr"] = self._repr(kwargs, self.repr_max[1])
            body = (args, kwargs, self.body[2])
            if self.json_parts:
                quoted = _quote(task_id)
                v = {"id": quoted, "root_id": quoted, "argsrepr": _quote(argsrepr),
                     "kwargsrepr": _quote(kwargsrepr),
                     "parent_id": "null" if parent_id is None else _quote(parent_id)}
                p, f = self.json_parts, self.part_fields
                text = "".join((p[0], v[f[0]], p[1], v[f[1]], p[2], v[f[2]], p[3], v[f[3]], p[4], v[f[4]],
                                *((self.json_open, ", ", _object_tail(extra)) if extra else (p[5],))))
                if encoded is not None:
                    encoded.json_text = text
        else:
            headers = {}
            body = dict(self.body)
            body["id"] = task_id
            body["args"] = args
            body["kwargs"] = kwargs
        if parent_id is not None:
            headers["parent_id"] = parent_id
        if extra:
            headers.update(extra)
        if spec.headers:
            headers.update(spec.headers)
        data: str | bytes
        if self.json_encode is not None:
            content_type, content_encoding = "application/json", "utf-8"
            if self.embed_json is not None:  # json.dumps((args, kwargs, embed)), embed encoded once
                pair = texts[2] if texts is not None else self.json_encode((args, kwargs))
                data = "".join((pair[:-1], ", ", self.embed_json, "]"))
            else:
                data = self.json_encode(body)
        else:
            try:
                content_type, content_encoding, data = self.dumps(body, serializer=spec.serializer)
            except Exception as exc:  # kombu's EncodeError and what the codec raised
                raise UsageError(f"cannot encode the task with {spec.serializer}: {exc}") from None
        if isinstance(data, str):  # text serializers return str; the transport sends bytes
            data = data.encode(content_encoding or "utf-8")
        if self.compress is not None:
            data, headers["compression"] = self.compress(data, spec.compression)
        properties: dict[str, Any] = {
            "correlation_id": task_id,
            "reply_to": self.builder.reply_to,
            "delivery_mode": 2,
        }
        if spec.expires is not None:
            properties["expiration"] = self.builder.expiration_ms(spec.expires)
        properties["priority"] = spec.priority or 0
        # a frozen dataclass's __init__ sets each field through object.__setattr__;
        # filling its __dict__ at once builds the same object several times faster
        message = object.__new__(OutgoingMessage)
        message.__dict__.update(body=data, content_type=content_type, content_encoding=content_encoding,
                                headers=headers, properties=properties, exchange=self.exchange,
                                routing_key=self.routing_key, exchange_type=self.spec.exchange_type)
        return message

    def _repr(self, value: Any, maxsize: int) -> str:
        """Celery's ``saferepr`` text (``plain_repr`` first)."""
        text = plain_repr(value)
        if text is not None:
            return text
        from celery.utils.saferepr import saferepr

        return saferepr(value, maxsize, maxlevels=self.repr_max[2])


def plain_repr(value: Any) -> str | None:
    """What Celery's ``saferepr`` writes for a tuple, list or dict of up to 32 plain values
    (ints below 10**15, None, booleans, short printable strings without quotes or backslashes;
    keys such strings): its ``repr``.  None for anything else (saferepr must decide)."""
    cls = value.__class__
    values = value if (cls is tuple or cls is list) and len(value) <= 32 else None
    if cls is dict and len(value) <= 32:
        values = value.values()
        for k in value:
            if not (k.__class__ is str and len(k) <= 64 and k.isprintable()
                    and not ("'" in k or '"' in k or "\\" in k)):
                return None
    if values is None:
        return None
    for v in values:
        t = v.__class__
        if t is int:
            if -10**15 < v < 10**15:
                continue
        elif t is str:
            if len(v) <= 64 and v.isprintable() and not ("'" in v or '"' in v or "\\" in v):
                continue
        elif v is None or t is bool:
            continue
        return None
    text = repr(value)
    return text if len(text) < 512 else None


def arg_texts(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ArgTexts | None:
    """The texts ``Template.fill`` makes of a task's arguments for a JSON message (their reprs
    and their JSON), worked out ahead, elsewhere (``retry``'s reading process); None when they
    are not plain (the template works them out itself).  Plain values are numbers, text,
    booleans and None, which kombu's JSON encoder writes as ``json.dumps`` does: no need to
    import kombu here."""
    argsrepr = plain_repr(args)
    if argsrepr is None:
        return None
    kwargsrepr = plain_repr(kwargs)
    if kwargsrepr is None:
        return None
    return (argsrepr, kwargsrepr, _dumps_plain((args, kwargs)))


# (argsrepr, kwargsrepr, json.dumps((args, kwargs)) with kombu's encoder): a plain tuple, cheap
# to send between processes
ArgTexts = tuple[str, str, str]
_dumps_plain = make_dumps()  # json.dumps, the encoder built once


class EncodedHeaders(dict[str, Any]):
    """Headers that also carry their own ``json.dumps`` text (see ``Template._json_parts``)."""

    __slots__ = ("json_text",)
    json_text: str


def _kombu_json_dumps() -> Callable[[Any], str]:
    """kombu's json serializer (json.dumps with kombu's JSONEncoder), its encoder built once."""
    from kombu.utils.json import JSONEncoder

    return make_dumps(JSONEncoder().default)


def _object_tail(extra: dict[str, Any]) -> str:
    """``json.dumps(extra)[1:]``: the members and the closing brace (str -> str at once)."""
    if len(extra) == 1:  # retry's one header
        [(k, v)] = extra.items()
        if k.__class__ is str and v.__class__ is str:
            return f"{_quote(k)}: {_quote(v)}}}"
    if all(k.__class__ is str and v.__class__ is str for k, v in extra.items()):
        return ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in extra.items()) + "}"
    return json.dumps(extra)[1:]


def _field(message: CeleryMessage, name: str) -> str | None:
    """The message's ``eta`` / ``expires`` (ISO 8601 text): in the body (protocol 1), else a header."""
    if isinstance(message.body, dict):
        return message.body.get(name)
    return message.headers.get(name)


class Sent:
    """What one publish produced, for the command's output (slots: one per sent task)."""

    __slots__ = ("id", "task", "queue", "exchange", "routing_key", "eta", "expires", "priority")

    def __init__(self, id: str, task: str, queue: str | None, exchange: str, routing_key: str,
                 eta: str | None, expires: str | None, priority: int) -> None:
        self.id = id
        self.task = task
        self.queue = queue  # None when a named exchange decides
        self.exchange = exchange
        self.routing_key = routing_key
        self.eta = eta
        self.expires = expires
        self.priority = priority

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "queue": self.queue, "exchange": self.exchange,
                "routing_key": self.routing_key, "eta": self.eta, "expires": self.expires,
                "priority": self.priority}


def describe(message: OutgoingMessage, template: Template) -> Sent:
    """The ``Sent`` record of the message ``template`` built last."""
    eta, expires = template.last_times
    return Sent(message.properties["correlation_id"], template.spec.name,
                message.routing_key if message.exchange == "" else None,
                message.exchange, message.routing_key, eta, expires,
                message.properties.get("priority", 0))
