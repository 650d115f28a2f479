"""The work behind ``celerytool send``: specs from options, one task or an NDJSON stream."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from celerytool.errors import BrokerUnavailable, CeleryToolError, DataError, UsageError
from celerytool.render import note, warn
from celerytool.sending import (
    MessageBuilder,
    RetryPolicy,
    TaskSpec,
    describe,
    normalize,
    parse_value,
    spec_from_record,
    with_retry,
)
from celerytool.sending.spec import parse_pair

BATCH = 5000  # tasks per pipelined round-trip in --from mode
MAX_TEMPLATES = 10_000  # distinct task+options kept built; beyond, start again (bounded memory)
_RECORD_FIELDS = frozenset({"task", "args", "kwargs", "options"})


class Sender:
    def __init__(self, app: Any, policy: RetryPolicy, *, visibility_timeout: float,
                 delayed_delivery: bool = True) -> None:
        self.app = app
        self.policy = policy
        self.visibility_timeout = visibility_timeout
        self.delayed_delivery = delayed_delivery
        self._broker: Any = None
        self._builder: MessageBuilder | None = None
        self.on_batch: Any = None  # called with the running total after each batch

    # -- pieces ----------------------------------------------------------------------------
    @property
    def builder(self) -> MessageBuilder:
        if self._builder is None:
            self._builder = MessageBuilder(self.app.broker_url.raw)
        return self._builder

    @property
    def broker(self) -> Any:
        if self._broker is None:
            self._broker = self.app.open_broker()
        return self._broker

    def defaults(self, options: dict[str, Any], headers: Iterable[str]) -> TaskSpec:
        spec = TaskSpec(name="", headers=dict(parse_pair(h, "--header") for h in headers), **options)
        return self._normalize(spec)

    def _normalize(self, spec: TaskSpec) -> TaskSpec:
        notes: list[str] = []
        spec = normalize(spec, notes)
        for text in notes:
            note(text)
        return spec

    def single_spec(self, task: str, arg: tuple[str, ...], args_json: str | None, kwargs_json: str | None,
                    kwarg: tuple[str, ...], task_id: str | None, defaults: TaskSpec) -> TaskSpec:
        if args_json is not None and arg:
            raise UsageError("give positional arguments either as ARGs or with --args, not both")
        args = _json_option(args_json, "--args", list) if args_json is not None else [parse_value(a) for a in arg]
        kwargs = _json_option(kwargs_json, "--kwargs", dict) if kwargs_json is not None else {}
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
        ahead = spec.countdown or 0.0
        if spec.eta is not None:
            ahead = (spec.eta - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        if ahead > self.visibility_timeout:
            warn(f"the ETA is {ahead:.0f} s ahead, beyond the Redis visibility timeout "
                 f"({self.visibility_timeout:.0f} s): the worker holding it will have it redelivered "
                 "and the task can run twice (raise the workers' visibility_timeout, then pass "
                 "--visibility-timeout)")

    def _native_delay(self, spec: TaskSpec, message: Any) -> Any:
        """On RabbitMQ, a countdown / ETA task routed as Celery 5.5+'s send_task routes it:
        through native delayed delivery where the destination allows it (see
        ``brokers.amqp.delayed.native_destination``), else as is, with Celery's warning for a
        quorum queue behind a direct exchange (its worker holds the task until due)."""
        if self.broker.kind != "amqp":
            return message
        if spec.countdown is not None:
            ahead = spec.countdown
        elif spec.eta is not None:
            ahead = (spec.eta - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        else:
            return message
        if ahead <= 0:
            return message
        queue = spec.queue or (message.routing_key if message.exchange == "" else None)
        if not self.delayed_delivery:
            return message
        route, why = self.broker.delayed_route(message.exchange, message.routing_key, queue, int(ahead))
        if route is not None:
            note(f"through native delayed delivery: exchange {route[0]!r}, due in {int(ahead)} s")
            return replace(message, exchange=route[0], routing_key=route[1], exchange_type="topic")
        if queue and self.broker.queue_type(queue) == "quorum":
            warn(f"{queue!r} is a quorum queue and native delayed delivery does not apply ({why}; Celery "
                 "warns of a direct exchange too): the worker that receives this task holds it until its ETA")
        return message

    def _publish(self, messages: list[Any]) -> int:
        def on_retry(exc: BrokerUnavailable, wait: float, attempt: int) -> None:
            note(f"{exc.message}; retry {attempt}/{self.policy.max_retries} in {wait:.1f} s")

        return with_retry(lambda: self.broker.publish(messages), self.policy, on_retry)

    # -- one task --------------------------------------------------------------------------
    def send_one(self, spec: TaskSpec, *, dry_run: bool, wait: bool, timeout: float | None) -> int:
        from celerytool.ids import uuid4

        template = self.builder.template(spec)
        message = self._native_delay(spec, template.fill(spec.task_id or uuid4(), spec.args, spec.kwargs))
        sent = describe(message, template)
        if dry_run:  # the exact message is the data: JSON even in table mode
            from celerytool.render import emit_one

            emit_one(DryRun(message), "json" if self.app.fmt == "table" else self.app.fmt, "dry-run")
            return 0
        if wait:  # a backend we cannot read is a usage error before anything is sent
            from celerytool.backends import open_backend

            open_backend(self.app.backend_url)
        self._publish([message])
        if wait:
            from celerytool.cli.result import show_results

            note(f"sent {sent.id}; waiting for its result")
            return show_results(self.app, [sent.id], wait=True, timeout=timeout, one=True)
        if self.app.fmt == "table":
            self._emit_sent([sent])
        else:
            self.app.emit_one(sent, "sent")
        return 0

    def _emit_sent(self, records: Iterable[Any]) -> int:
        if self.app.fmt == "table":
            from celerytool.render.results import emit_lines

            return emit_lines((r.id for r in records), sys.stdout)
        return self.app.emit(records, "sent")

    # -- prepared tasks (retry) --------------------------------------------------------------
    def send_many(self, defaults: TaskSpec, items: Iterable[Prepared]) -> Iterator[Any]:
        """Publish each prepared task in pipelined batches; yield each ``Sent`` once published.

        A template is built once per task name and queue (from ``defaults``);
        only the id, args, kwargs, parent id and extra headers differ from one
        message to the next.
        """
        from celerytool.ids import uuid4_strings

        ids = uuid4_strings()
        templates: dict[tuple[str, str | None], Any] = {}
        batch: list[tuple[Any, Any]] = []
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
                                    extra=item.extra)
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

    def _publish_done(self, batch: list[tuple[Any, Any]]) -> int:
        try:
            self._publish([m for m, _ in batch])
        except CeleryToolError as exc:
            done = getattr(exc, "sent", None) or 0
            exc.sent_records = [s for _, s in batch[:done]]  # type: ignore[attr-defined]
            raise
        return len(batch)

    # -- NDJSON stream -----------------------------------------------------------------------
    def send_file(self, stream: Iterable[str], defaults: TaskSpec, *, dry_run: bool) -> int:
        if dry_run:
            from celerytool.render import emit

            fmt = "ndjson" if self.app.fmt == "table" else self.app.fmt
            try:
                emit((DryRun(m) for _, m, _ in self._messages(stream, defaults)), fmt, "dry-run")
            except _BadLine as bad:
                raise DataError(f"line {bad.lineno}: {bad.reason}") from None
            return 0
        import gc

        # Messages hold no reference cycles, so reference counting frees them all; the
        # cycle collector would only rescan every live object (Celery's included) over
        # and over while hundreds of thousands of small dicts are made.
        gc.disable()
        progress = _Progress() if self.app.stderr_is_tty() else None
        self.on_batch = progress.update if progress else None
        try:
            total = self._emit_sent(self._publish_batches(stream, defaults))
        finally:
            gc.enable()
            if progress:
                progress.stop()
        note(f"sent {total} task(s)")
        return 0

    def _publish_batches(self, stream: Iterable[str], defaults: TaskSpec) -> Iterator[Any]:
        batch: list[tuple[int, Any, Any]] = []
        state = {"sent": 0, "last": 0}

        def flush() -> Iterator[Any]:
            if not batch:
                return
            messages = [m for _, m, _ in batch]
            try:
                self._publish(messages)
            except CeleryToolError as exc:
                done = getattr(exc, "sent", None)
                done = 0 if done is None else done
                yield from (s for _, _, s in batch[:done])
                state["sent"] += done
                raise CeleryToolError(_stopped(exc.message, batch[done][0], state["sent"], batch[done - 1][0] if done else state["last"]),
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

    def _messages(self, stream: Iterable[str], defaults: TaskSpec) -> Iterator[tuple[int, Any, Any]]:
        """(line number, message, Sent record) for each NDJSON line; _BadLine stops it."""
        from celerytool.ids import uuid4_strings

        ids = uuid4_strings()
        templates: dict[Any, Any] = {}
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
                        note(f"line {lineno}: {text}")
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


class Prepared(NamedTuple):
    """One task for ``Sender.send_many``: what differs from the defaults."""

    task: str
    queue: str | None
    task_id: str | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    parent_id: str | None = None
    extra: dict[str, Any] | None = None


class _Progress:
    """A count of sent tasks on stderr (only when stderr is a terminal)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("sent {task.completed:,} task(s)"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                            redirect_stdout=False, redirect_stderr=False)
        self.task = self.bar.add_task("send", total=None)
        self.bar.start()

    def update(self, sent: int) -> None:
        self.bar.update(self.task, completed=sent)

    def stop(self) -> None:
        self.bar.stop()


class _BadLine(Exception):
    def __init__(self, lineno: int, reason: str) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.reason = reason


def _stopped(reason: str, lineno: int, sent: int, last_sent_line: int) -> str:
    where = f" (up to line {last_sent_line})" if sent else ""
    return f"{reason}; {sent} task(s) were sent{where}, nothing from line {lineno} on"


def _json_option(text: str, what: str, kind: type) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise UsageError(f"{what} must be a JSON {'array' if kind is list else 'object'}")
    return value


class DryRun:
    """The message as it would be handed to the broker, for --dry-run."""

    def __init__(self, message: Any) -> None:
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
