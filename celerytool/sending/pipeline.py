"""The send pipeline: task specs -> messages -> published in pipelined batches.

``send`` (one task or an NDJSON stream), ``retry`` (stored failures) and ``beat run`` go
through one ``Pipeline``: it builds each message once per task and options (a
``Template``), checks what the broker will not take, routes countdown / ETA tasks as
Celery 5.5+ does on RabbitMQ (native delayed delivery), and publishes with Celery's publish
retry policy.  It prints nothing: notes and warnings go to the ``say`` / ``warn``
callables the command gives it; the command renders what was sent.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from celerytool.errors import BrokerUnavailable, CeleryToolError, DataError, UsageError
from celerytool.model import OutgoingMessage
from celerytool.sending.build import ArgTexts, MessageBuilder, Sent, Template, describe
from celerytool.sending.retry import RetryPolicy, with_retry
from celerytool.sending.spec import TaskSpec, normalize, parse_pair, parse_value, spec_from_record

BATCH = 5000  # tasks per pipelined round-trip
MAX_TEMPLATES = 10_000  # distinct task+options kept built; beyond, start again (bounded memory)
_RECORD_FIELDS = frozenset({"task", "args", "kwargs", "options"})


class _Limits(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def max_priority(self) -> int | None: ...
    @property
    def visibility_timeout(self) -> bool: ...


class Publisher(Protocol):
    """What the pipeline needs of a broker (``brokers.base.Broker`` has it)."""

    @property
    def kind(self) -> str: ...
    @property
    def capabilities(self) -> _Limits: ...
    def publish(self, messages: list[OutgoingMessage]) -> int: ...


class _DelayRouter(Publisher, Protocol):
    """A RabbitMQ broker: native delayed delivery and queue types."""

    def delayed_route(self, exchange: str, routing_key: str, queue: str | None,
                      seconds: int) -> tuple[tuple[str, str] | None, str]: ...
    def queue_type(self, queue: str) -> str | None: ...


class Prepared(NamedTuple):
    """One task for ``Pipeline.send_many``: what differs from the defaults."""

    task: str
    queue: str | None
    task_id: str | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    parent_id: str | None = None
    extra: dict[str, Any] | None = None
    texts: ArgTexts | None = None  # build.arg_texts(args, kwargs), worked out ahead


class BatchStopped(CeleryToolError):
    """Publishing stopped part-way: ``sent`` holds what went out before the error."""

    def __init__(self, error: CeleryToolError, sent: list[Sent]) -> None:
        super().__init__(error.message, error.exit_code)
        self.sent = sent


def _quiet(text: str) -> None:
    pass


@dataclass
class Pipeline:
    """Builds and publishes task messages to one broker, opened on first use."""

    open_broker: Callable[[], Publisher]
    url: str  # the broker URL (its transport decides the message's shape)
    policy: RetryPolicy
    visibility_timeout: float = 3600.0
    delayed_delivery: bool = True
    say: Callable[[str], None] = _quiet  # a note for the operator
    warn: Callable[[str], None] = _quiet  # a warning
    on_batch: Callable[[int], None] | None = None  # called with the running total after each batch

    def __post_init__(self) -> None:
        self._broker: Publisher | None = None
        self._builder: MessageBuilder | None = None

    # -- pieces ----------------------------------------------------------------------------
    @property
    def builder(self) -> MessageBuilder:
        if self._builder is None:
            self._builder = MessageBuilder(self.url)
        return self._builder

    def warm_up(self) -> None:
        """Make what every message needs (Celery's app, the builder) now, while something
        else runs (``retry``: the reading process starts)."""
        _ = self.builder

    @property
    def broker(self) -> Publisher:
        if self._broker is None:
            self._broker = self.open_broker()
        return self._broker

    def defaults(self, options: dict[str, Any], headers: Iterable[str]) -> TaskSpec:
        """The spec every task of this run starts from: the command line's options."""
        spec = TaskSpec(name="", headers=dict(parse_pair(h, "--header") for h in headers), **options)
        notes: list[str] = []
        spec = normalize(spec, notes)
        for text in notes:
            self.say(text)
        return spec

    def single_spec(self, task: str, arg: tuple[str, ...], args_json: str | None, kwargs_json: str | None,
                    kwarg: tuple[str, ...], task_id: str | None, defaults: TaskSpec) -> TaskSpec:
        if args_json is not None and arg:
            raise UsageError("give positional arguments either as ARGs or with --args, not both")
        args = json_option(args_json, "--args", list) if args_json is not None else [parse_value(a) for a in arg]
        kwargs = json_option(kwargs_json, "--kwargs", dict) if kwargs_json is not None else {}
        kwargs.update(parse_pair(k, "--kwarg") for k in kwarg)
        spec = replace(defaults, name=task, args=tuple(args), kwargs=kwargs, task_id=task_id)
        self.check(spec)
        return spec

    def check(self, spec: TaskSpec) -> None:
        """Limits and warnings of the broker that Celery would not give."""
        caps = self.broker.capabilities
        top = caps.max_priority
        if spec.priority is not None and top is not None and spec.priority > top:
            raise UsageError(f"priority {spec.priority} is out of range on {caps.name}: 0-{top} (0 is served first)")
        if not caps.visibility_timeout:
            return
        ahead = _ahead(spec) or 0.0
        if ahead > self.visibility_timeout:
            self.warn(f"the ETA is {ahead:.0f} s ahead, beyond the Redis visibility timeout "
                      f"({self.visibility_timeout:.0f} s): the worker holding it will have it redelivered "
                      "and the task can run twice (raise the workers' visibility_timeout, then pass "
                      "--visibility-timeout)")

    def _native_delay(self, spec: TaskSpec, message: OutgoingMessage) -> OutgoingMessage:
        """On RabbitMQ, a countdown / ETA task routed as Celery 5.5+'s send_task routes it:
        through native delayed delivery where the destination allows it (see
        ``brokers.amqp.delayed.native_destination``), else as is, with Celery's warning for a
        quorum queue behind a direct exchange (its worker holds the task until due)."""
        if self.broker.kind != "amqp" or not self.delayed_delivery:
            return message
        ahead = _ahead(spec)
        if ahead is None or ahead <= 0:
            return message
        broker = cast(_DelayRouter, self.broker)
        queue = spec.queue or (message.routing_key if message.exchange == "" else None)
        route, why = broker.delayed_route(message.exchange, message.routing_key, queue, int(ahead))
        if route is not None:
            self.say(f"through native delayed delivery: exchange {route[0]!r}, due in {int(ahead)} s")
            return replace(message, exchange=route[0], routing_key=route[1], exchange_type="topic")
        if queue and broker.queue_type(queue) == "quorum":
            self.warn(f"{queue!r} is a quorum queue and native delayed delivery does not apply ({why}; Celery "
                      "warns of a direct exchange too): the worker that receives this task holds it until its ETA")
        return message

    def publish(self, messages: list[OutgoingMessage]) -> int:
        """Publish under the retry policy (notes on each retry)."""
        def on_retry(exc: BrokerUnavailable, wait: float, attempt: int) -> None:
            self.say(f"{exc.message}; retry {attempt}/{self.policy.max_retries} in {wait:.1f} s")

        return with_retry(lambda: self.broker.publish(messages), self.policy, on_retry)

    # -- one task --------------------------------------------------------------------------
    def prepare(self, spec: TaskSpec) -> tuple[OutgoingMessage, Sent]:
        """The message of one task (routed) and the record of it."""
        from celerytool.ids import uuid4

        template = self.builder.template(spec)
        message = self._native_delay(spec, template.fill(spec.task_id or uuid4(), spec.args, spec.kwargs))
        return message, describe(message, template)

    # -- prepared tasks (retry) --------------------------------------------------------------
    def send_many(self, defaults: TaskSpec, items: Iterable[Prepared]) -> Iterator[Sent]:
        """Publish each prepared task in pipelined batches; yield each ``Sent`` once published.

        A template is built once per task name and queue (from ``defaults``); only the id,
        args, kwargs, parent id and extra headers differ from one message to the next.  A
        failed batch raises ``BatchStopped`` with what of it went out.
        """
        from celerytool.ids import uuid4_strings

        ids = uuid4_strings()
        templates: dict[tuple[str, str | None], Template] = {}
        batch: list[tuple[OutgoingMessage, Sent]] = []
        sent = 0
        for item in items:
            key = (item.task, item.queue)
            template = templates.get(key)
            if template is None:
                spec = replace(defaults, name=item.task, queue=item.queue or defaults.queue)
                self.check(spec)
                if len(templates) >= MAX_TEMPLATES:
                    templates.clear()
                template = templates[key] = self.builder.template(spec)
            message = template.fill(item.task_id or next(ids), item.args, item.kwargs, parent_id=item.parent_id,
                                    extra=item.extra, texts=item.texts)
            batch.append((message, describe(message, template)))
            if len(batch) >= BATCH:
                sent += self._publish_done(batch)
                yield from (s for _, s in batch)
                batch.clear()
                if self.on_batch is not None:
                    self.on_batch(sent)
        if batch:
            sent += self._publish_done(batch)
            yield from (s for _, s in batch)
            if self.on_batch is not None:
                self.on_batch(sent)

    def _publish_done(self, batch: list[tuple[OutgoingMessage, Sent]]) -> int:
        try:
            self.publish([m for m, _ in batch])
        except CeleryToolError as exc:
            done = getattr(exc, "sent", None) or 0
            raise BatchStopped(exc, [s for _, s in batch[:done]]) from None
        return len(batch)

    # -- NDJSON stream -----------------------------------------------------------------------
    def planned(self, stream: Iterable[str], defaults: TaskSpec) -> Iterator[OutgoingMessage]:
        """Each line's message, nothing sent (``--dry-run``); a bad line is a DataError."""
        try:
            for _, message, _ in self._messages(stream, defaults):
                yield message
        except _BadLine as bad:
            raise DataError(f"line {bad.lineno}: {bad.reason}") from None

    def send_stream(self, stream: Iterable[str], defaults: TaskSpec) -> Iterator[Sent]:
        """Publish each line's task in pipelined batches; yield each ``Sent`` once published.
        A bad line or a broker error stops it, saying which lines were sent."""
        batch: list[tuple[int, OutgoingMessage, Sent]] = []
        state = {"sent": 0, "last": 0}

        def flush() -> Iterator[Sent]:
            if not batch:
                return
            messages = [m for _, m, _ in batch]
            try:
                self.publish(messages)
            except CeleryToolError as exc:
                done = getattr(exc, "sent", None)
                done = 0 if done is None else done
                yield from (s for _, _, s in batch[:done])
                state["sent"] += done
                last = batch[done - 1][0] if done else state["last"]
                raise CeleryToolError(_stopped(exc.message, batch[done][0], state["sent"], last),
                                      exc.exit_code) from None
            yield from (s for _, _, s in batch)
            state["sent"] += len(batch)
            if self.on_batch is not None:
                self.on_batch(state["sent"])
            state["last"] = batch[-1][0]
            batch.clear()

        try:
            for item in self._messages(stream, defaults):
                batch.append(item)
                if len(batch) >= BATCH:
                    yield from flush()
        except _BadLine as bad:
            yield from flush()
            raise DataError(_stopped(f"line {bad.lineno}: {bad.reason}", bad.lineno, state["sent"],
                                     state["last"])) from None
        yield from flush()

    def _messages(self, stream: Iterable[str], defaults: TaskSpec) -> Iterator[tuple[int, OutgoingMessage, Sent]]:
        """(line number, message, Sent record) for each NDJSON line; _BadLine stops it."""
        from celerytool.ids import uuid4_strings

        ids = uuid4_strings()
        templates: dict[tuple[Any, str | None], Template] = {}
        builder = self.builder
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if (type(record) is not dict or not _RECORD_FIELDS.issuperset(record)
                        or type(record.get("task")) is not str):
                    spec_from_record(record, defaults)  # raises the precise complaint
                options = record.get("options")
                task_id = None
                if options is not None and type(options) is not dict:
                    raise UsageError("'options' must be a JSON object")
                if options and ("task_id" in options or "id" in options):
                    options = dict(options)
                    task_id = options.pop("task_id", None)
                    alias = options.pop("id", None)
                    task_id = task_id if task_id is not None else alias
                    if not isinstance(task_id, str):
                        raise UsageError("task_id must be a string")
                key = (record.get("task"), json.dumps(options, sort_keys=True) if options else None)
                template = templates.get(key)
                if template is None:
                    spec, notes = spec_from_record({**record, "options": options}, defaults)
                    for text in notes:
                        self.say(f"line {lineno}: {text}")
                    self.check(spec)
                    if len(templates) >= MAX_TEMPLATES:
                        templates.clear()
                    template = templates[key] = builder.template(spec)
                args = record.get("args")
                kwargs = record.get("kwargs")
                if type(args) is not list:
                    if args is not None:
                        raise UsageError("'args' must be a JSON array")
                    args = []
                if type(kwargs) is not dict:
                    if kwargs is not None:
                        raise UsageError("'kwargs' must be a JSON object")
                    kwargs = {}
                message = template.fill(task_id or next(ids), tuple(args), kwargs)
            except ValueError as exc:
                raise _BadLine(lineno, f"not valid JSON ({exc})") from None
            except CeleryToolError as exc:
                raise _BadLine(lineno, exc.message) from None
            yield lineno, message, describe(message, template)


def _ahead(spec: TaskSpec) -> float | None:
    """Seconds until the task is due (countdown or ETA), None when it is not delayed."""
    if spec.countdown is not None:
        return spec.countdown
    if spec.eta is not None:
        return (spec.eta - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
    return None


class _BadLine(Exception):
    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason


def _stopped(reason: str, lineno: int, sent: int, last_sent_line: int) -> str:
    where = f" (up to line {last_sent_line})" if sent else ""
    return f"{reason}; {sent} task(s) were sent{where}, nothing from line {lineno} on"


_J = TypeVar("_J")


def json_option(text: str, what: str, kind: type[_J]) -> _J:
    """The JSON value of an option (``--args``, ``--kwargs``), of the kind it must be."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise UsageError(f"{what} must be a JSON {'array' if kind is list else 'object'}")
    return value


class DryRun:
    """The message as it would be handed to the broker, for --dry-run."""

    def __init__(self, message: OutgoingMessage) -> None:
        self.m = message

    def to_json(self) -> dict[str, Any]:
        from celerytool.codecs.compression import decompress
        from celerytool.codecs.limits import DEFAULT_LIMITS
        from celerytool.codecs.serializers import deserialize
        from celerytool.jsontext import to_jsonable

        m = self.m
        body = m.body
        if m.headers.get("compression"):
            body = decompress(body, m.headers["compression"], DEFAULT_LIMITS.max_bytes)
        return {
            "exchange": m.exchange,
            "routing_key": m.routing_key,
            "content_type": m.content_type,
            "content_encoding": m.content_encoding,
            "headers": to_jsonable(dict(m.headers)),
            "properties": to_jsonable(m.properties),
            "body": to_jsonable(deserialize(body, m.content_type, m.content_encoding, DEFAULT_LIMITS)),
            "body_size": len(m.body),
        }
