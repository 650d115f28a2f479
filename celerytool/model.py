"""The data celerytool shows: frozen dataclasses with ``to_json()``.

Adapters and codecs return these; ``render`` formats them.  The JSON field
names are a stable contract (docs/output.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from celerytool.jsontext import small_text, to_jsonable

_T = TypeVar("_T")


@dataclass(frozen=True)
class Message:
    """One decoded task message (or a record of why it could not be decoded)."""

    queue: str | None = None
    position: int | None = None  # 0 = the next one a worker would receive
    priority: int | None = None
    id: str | None = None
    task: str | None = None
    args: Any = None
    kwargs: Any = None
    eta: str | None = None
    expires: str | None = None
    retries: int | None = None
    protocol: int | None = None  # Celery task protocol, 1 or 2
    content_type: str | None = None
    content_encoding: str | None = None
    compression: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    embed: dict[str, Any] = field(default_factory=dict)
    size: int = 0  # bytes of the raw envelope as stored
    error: str | None = None
    raw: bytes | None = None  # the stored bytes, kept for errors and export
    redelivered: bool | None = None  # RabbitMQ only
    extra: dict[str, Any] = field(default_factory=dict)  # adapter-specific fields
    # the JSON texts of args, kwargs, embed, headers and properties as stored,
    # kept by the fast decoder (codecs.fast_envelope) when they hold plain JSON
    # values only: to_json need not convert them and jsontext.record_text writes
    # these texts as they are.  Not an init argument: replace() drops it.
    json_texts: tuple[str, str, str, str, str] | None = field(
        default=None, init=False, compare=False, repr=False)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> Message:
        """``Message(**values)`` at half the cost, for decoding loops.

        The frozen dataclass ``__init__`` sets each of the 24 fields through
        ``object.__setattr__``; here one dict merge does it.
        """
        state = {**_MESSAGE_DEFAULTS, **values}
        if len(state) != len(_MESSAGE_DEFAULTS):
            raise TypeError(f"unknown Message fields: {sorted(values.keys() - _MESSAGE_DEFAULTS.keys())}")
        for name, make in _MESSAGE_FACTORIES:
            if name not in values:
                state[name] = make()
        return cls.from_state(state)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Message:
        """A Message whose ``__dict__`` is ``state``, which names every field (unchecked)."""
        message = object.__new__(cls)
        object.__setattr__(message, "__dict__", state)
        return message

    def to_json(self, *, include_raw: bool | None = None) -> dict[str, Any]:
        convert: Callable[[Any], Any] = to_jsonable if self.json_texts is None else _as_is
        out: dict[str, Any] = {
            "queue": self.queue,
            "position": self.position,
            "priority": self.priority,
            "id": self.id,
            "task": self.task,
            "args": convert(self.args),
            "kwargs": convert(self.kwargs),
            "eta": self.eta,
            "expires": self.expires,
            "retries": self.retries,
            "protocol": self.protocol,
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
            "compression": self.compression,
            "headers": convert(self.headers),
            "properties": convert(self.properties),
            "embed": convert(self.embed),
            "size": self.size,
            "error": self.error,
        }
        if self.redelivered is not None:
            out["redelivered"] = self.redelivered
        for k, v in self.extra.items():
            out[k] = to_jsonable(v)
        if include_raw or (include_raw is None and self.error is not None):
            out["raw"] = to_jsonable(self.raw) if self.raw is not None else None
        return out


def _as_is(value: _T) -> _T:
    return value


# for Message.from_fields: each field's default, or its default factory
_MESSAGE_DEFAULTS: dict[str, Any] = {f.name: None if f.default is MISSING else f.default
                                     for f in fields(Message)}
_MESSAGE_FACTORIES: list[tuple[str, Callable[[], Any]]] = [
    (f.name, f.default_factory) for f in fields(Message) if f.default_factory is not MISSING
]


@dataclass(frozen=True)
class QueueInfo:
    name: str
    messages: int  # ready messages, all priority sub-lists together
    priorities: dict[str, int] = field(default_factory=dict)  # bucket -> count (Redis)
    unacked: int | None = None
    consumers: int | None = None
    type: str | None = None  # RabbitMQ: classic / quorum / stream
    arguments: dict[str, Any] = field(default_factory=dict)
    exists: bool = True
    counted: str | None = None  # RabbitMQ: "exact" (passive declare) or "sample" (management statistics)
    leader: str | None = None  # RabbitMQ quorum queue: the node of its Raft leader
    members: tuple[str, ...] = ()  # RabbitMQ quorum queue: the nodes that hold a replica
    online: tuple[str, ...] = ()  # RabbitMQ quorum queue: the members that answer now
    paused: bool = False  # `celerytool pause` stopped workers consuming it (a pause record exists)
    delayed: int | None = None  # tasks bound for it waiting for their ETA (`queues --delayed`)
    head_timestamp: float | None = None  # RabbitMQ: the AMQP timestamp of its first message, when it has one

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "messages": self.messages,
            "priorities": dict(self.priorities),
            "exists": self.exists,
        }
        if self.paused:
            out["paused"] = True
        if self.delayed is not None:
            out["delayed"] = self.delayed
        if self.head_timestamp is not None:
            out["head_message_timestamp"] = self.head_timestamp
        if self.counted is not None:
            out["counted"] = self.counted
        if self.unacked is not None:
            out["unacked"] = self.unacked
        if self.consumers is not None:
            out["consumers"] = self.consumers
        if self.type is not None:
            out["type"] = self.type
        if self.arguments:
            out["arguments"] = to_jsonable(self.arguments)
        if self.type == "quorum" and (self.leader or self.members):
            out["leader"] = self.leader
            out["members"] = list(self.members)
            out["online"] = list(self.online)
        return out


@dataclass(frozen=True)
class PauseRecord:
    """What `celerytool pause` keeps in the broker: which workers it stopped consuming a queue,
    so that `resume` (anyone's) restarts exactly those. Stored as JSON (``to_text``)."""

    queue: str
    workers: tuple[str, ...]
    paused_at: str  # ISO 8601, UTC
    by: str = ""  # user@host that paused it

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "workers": list(self.workers), "paused_at": self.paused_at, "by": self.by}

    def to_text(self) -> str:
        import json

        return json.dumps(self.to_json(), sort_keys=True)

    @classmethod
    def from_text(cls, queue: str, data: bytes | str) -> PauseRecord:
        """The stored record; one that cannot be read names no worker (``resume -d`` then)."""
        import json

        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            return cls(queue, (), "", "")
        workers = obj.get("workers")
        return cls(queue, tuple(w for w in workers if isinstance(w, str)) if isinstance(workers, list) else (),
                   str(obj.get("paused_at") or ""), str(obj.get("by") or ""))


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str
    pattern: str
    queue: str
    exchange_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "pattern": self.pattern,
            "queue": self.queue,
        }
        if self.exchange_type is not None:
            out["exchange_type"] = self.exchange_type
        return out


@dataclass
class TaskResult:
    """What a result backend holds for one task id (PENDING when nothing).

    Not frozen: a frozen dataclass sets each of its 18 fields through
    ``object.__setattr__``, three times the cost of decoding a stored result
    when ``failures`` and ``retry`` read a million.  Nothing changes one once made.
    """

    id: str
    status: str
    result: Any = None
    traceback: str | None = None
    date_done: str | None = None
    children: Any = None
    name: str | None = None
    args: Any = None
    kwargs: Any = None
    worker: str | None = None
    retries: int | None = None
    queue: str | None = None
    group_id: str | None = None
    parent_id: str | None = None
    exception: dict[str, Any] | None = None  # {"type", "module", "message"}
    group: bool = False  # a celery-taskset-meta-* group result
    error: str | None = None  # why the stored value could not be decoded
    meta: dict[str, Any] = field(default_factory=dict)  # everything stored, as stored

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "result": to_jsonable(self.result),
            "traceback": self.traceback,
            "date_done": self.date_done,
            "children": to_jsonable(self.children),
            "exception": self.exception,
        }
        for key in ("name", "args", "kwargs", "worker", "retries", "queue", "group_id", "parent_id"):
            value = getattr(self, key)
            if value is not None:
                out[key] = to_jsonable(value)
        if self.group:
            out["group"] = True
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class OutgoingMessage:
    """A message ready to publish: body already serialized (and compressed).

    ``properties`` holds the AMQP-style properties kombu sets (correlation_id,
    reply_to, delivery_mode, priority, expiration, ...); each adapter maps this
    onto its broker (a kombu envelope LPUSHed on Redis, basic.publish on AMQP).
    """

    body: bytes
    content_type: str
    content_encoding: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    exchange: str = ""
    routing_key: str = "celery"
    exchange_type: str | None = None  # direct / topic / fanout; None: the broker infers it


@dataclass(slots=True)  # not frozen: built once per delayed task, by the hundred thousand (frozen costs 2x)
class DelayedTask:
    """A task waiting for its ETA: where it waits and when it is due (``delayed``)."""

    id: str | None
    task: str | None
    args: Any
    kwargs: Any
    queue: str | None  # where it goes when due (RabbitMQ: the destination routing key)
    due: str | None  # ISO 8601 UTC; None when it cannot be told
    left: float | None  # seconds until due at the time of reading (negative: overdue)
    waits_in: str  # "unacked" (Redis, held by a worker) or "celery_delayed_<L>" (RabbitMQ)
    delivered_again: bool = False  # Redis: due beyond the visibility timeout, so delivered twice
    # the JSON texts of args and kwargs as stored, when they are what to_jsonable gives (see
    # codecs.fast_envelope): json_text() joins them instead of encoding the values again
    texts: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "args": to_jsonable(self.args),
                "kwargs": to_jsonable(self.kwargs), "queue": self.queue, "due": self.due,
                "left": None if self.left is None else round(self.left, 3), "waits_in": self.waits_in,
                "delivered_again": self.delivered_again}

    def json_text(self) -> str | None:
        """``dumps(self.to_json())``, from the kept texts (None when there are none)."""
        if self.texts is None:
            return None
        s = small_text
        left = "null" if self.left is None else repr(round(self.left, 3))
        return (f'{{"id":{s(self.id)},"task":{s(self.task)},"args":{self.texts[0]},"kwargs":{self.texts[1]},'
                f'"queue":{s(self.queue)},"due":{s(self.due)},"left":{left},"waits_in":{s(self.waits_in)},'
                f'"delivered_again":{"true" if self.delivered_again else "false"}}}')


@dataclass(frozen=True)
class BeatEntry:
    """One periodic task of a beat scheduler's store (``beat``)."""

    name: str
    task: str | None
    schedule: str  # in words: every 30s, crontab 0 */2 * * * (Europe/Paris), solar ..., clocked ...
    args: Any = None
    kwargs: Any = None
    options: dict[str, Any] = field(default_factory=dict)  # queue, exchange, routing_key, priority, ...
    enabled: bool | None = None  # None: the store has no such flag (the beat file)
    last_run_at: str | None = None  # ISO 8601 UTC
    total_run_count: int | None = None
    next_due: str | None = None  # ISO 8601 UTC; None when it cannot be told (``note`` says why)
    note: str | None = None
    store: str = ""  # redbeat | django | file

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "schedule": self.schedule,
                "args": to_jsonable(self.args), "kwargs": to_jsonable(self.kwargs),
                "options": to_jsonable(self.options), "enabled": self.enabled,
                "last_run_at": self.last_run_at, "total_run_count": self.total_run_count,
                "next_due": self.next_due, "note": self.note, "store": self.store}
