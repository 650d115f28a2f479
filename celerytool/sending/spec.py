"""What to send: ``TaskSpec``, and parsing of CLI values and NDJSON lines into it."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

from celerytool.errors import UsageError

SERIALIZERS = ("json", "pickle", "msgpack", "yaml")
COMPRESSIONS = ("zlib", "gzip", "bzip2", "lzma", "brotli", "zstd")
EXCHANGE_TYPES = ("direct", "topic", "fanout")
UTC = _dt.timezone.utc


@dataclass(frozen=True)
class TaskSpec:
    """One task to publish, in the terms of Celery's ``send_task``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None
    countdown: float | None = None
    eta: _dt.datetime | None = None
    expires: float | _dt.datetime | None = None
    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    exchange_type: str | None = None
    priority: int | None = None
    serializer: str = "json"
    compression: str | None = None
    protocol: int = 2
    headers: dict[str, Any] = field(default_factory=dict)
    time_limit: float | None = None
    soft_time_limit: float | None = None
    link: tuple[str, ...] = ()
    link_error: tuple[str, ...] = ()


def parse_value(text: str) -> Any:
    """A JSON literal when the text is one (``4``, ``[1,2]``, ``"4"``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pair(text: str, what: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise UsageError(f"{what} must look like name=value, not {text!r}")
    return name, parse_value(value)


def parse_datetime(text: str, what: str) -> tuple[_dt.datetime, bool]:
    """ISO 8601 -> aware datetime; the flag says the text had no offset (UTC assumed)."""
    raw = text.strip()
    try:
        value = _dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "zZ" else raw)
    except ValueError:
        raise UsageError(f"{what} must be an ISO 8601 date-time such as "
                         f"2030-01-01T12:00:00+00:00, not {text!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), True
    return value, False


def parse_expires(value: object, what: str = "--expires") -> tuple[float | _dt.datetime, bool]:
    """Seconds (a number, or a duration such as 10m or 1h30m) or an ISO 8601 date-time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, what), False
    text = str(value)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return _number(seconds, what), False
    from celerytool.selection import parse_duration

    try:
        return _number(parse_duration(text), what), False
    except UsageError:
        pass
    try:
        return parse_datetime(text, what)
    except UsageError:
        raise UsageError(f"{what} must be seconds, a duration (90, 10m, 1h30m, 2d) or an ISO 8601 date-time "
                         f"such as 2030-01-01T12:00:00+00:00, not {text!r}") from None


_OPTION_ALIASES = {"id": "task_id", "link_error": "link_error", "errback": "link_error"}
_SPEC_FIELDS = {f.name for f in fields(TaskSpec)} - {"name", "args", "kwargs"}


def spec_from_record(record: object, defaults: TaskSpec | None = None) -> tuple[TaskSpec, list[str]]:
    """One NDJSON object ``{"task", "args", "kwargs", "options"}`` -> (spec, notes).

    ``options`` take the names of ``apply_async`` (countdown, eta, expires,
    queue, exchange, routing_key, priority, serializer, compression,
    task_id, headers, time_limit, soft_time_limit, link, link_error) plus
    ``protocol`` and ``exchange_type``.  Raises UsageError on a bad record.
    """
    if not isinstance(record, dict):
        raise UsageError("a line must be a JSON object with a 'task' field")
    unknown = set(record) - {"task", "args", "kwargs", "options"}
    if unknown:
        raise UsageError(f"unknown field(s) {sorted(unknown)} (expected task, args, kwargs, options)")
    name = record.get("task")
    if not isinstance(name, str) or not name:
        raise UsageError("'task' must be a non-empty string")
    args = record.get("args")
    args = [] if args is None else args
    kwargs = record.get("kwargs")
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list):
        raise UsageError("'args' must be a JSON array")
    if not isinstance(kwargs, dict):
        raise UsageError("'kwargs' must be a JSON object")
    options = record.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise UsageError("'options' must be a JSON object")
    base = defaults or TaskSpec(name=name)
    values: dict[str, Any] = {"name": name, "args": tuple(args), "kwargs": kwargs}
    notes: list[str] = []
    for key, value in options.items():
        key = _OPTION_ALIASES.get(key, key)
        if key not in _SPEC_FIELDS:
            raise UsageError(f"unknown option {key!r}")
        values[key] = value
    spec = replace(base, **values)
    return normalize(spec, notes), notes


def normalize(spec: TaskSpec, notes: list[str]) -> TaskSpec:
    """Check and convert option values; append remarks (e.g. naive ETA) to ``notes``."""
    changes: dict[str, Any] = {}
    if spec.eta is not None and spec.countdown is not None:
        raise UsageError("give either countdown or eta, not both")
    if isinstance(spec.eta, str):
        eta, naive = parse_datetime(spec.eta, "eta")
        if naive:
            notes.append(f"eta {spec.eta} has no UTC offset: taken as UTC ({eta.isoformat()})")
        changes["eta"] = eta
    if spec.expires is not None and not isinstance(spec.expires, _dt.datetime):
        expires, naive = parse_expires(spec.expires, "expires")
        if naive:
            notes.append(f"expires {spec.expires} has no UTC offset: taken as UTC")
        changes["expires"] = expires
    if spec.countdown is not None:
        changes["countdown"] = _number(spec.countdown, "countdown")
    for key in ("time_limit", "soft_time_limit"):
        if getattr(spec, key) is not None:
            changes[key] = _number(getattr(spec, key), key)
    if spec.priority is not None:
        if not isinstance(spec.priority, int) or isinstance(spec.priority, bool) or not 0 <= spec.priority <= 255:
            raise UsageError(f"priority must be an integer 0-255, not {spec.priority!r}")
    if spec.serializer not in SERIALIZERS:
        raise UsageError(f"serializer must be one of {', '.join(SERIALIZERS)}, not {spec.serializer!r}")
    if spec.compression is not None and spec.compression not in COMPRESSIONS:
        raise UsageError(f"compression must be one of {', '.join(COMPRESSIONS)}, not {spec.compression!r}")
    if spec.protocol not in (1, 2):
        raise UsageError(f"protocol must be 1 or 2, not {spec.protocol!r}")
    if spec.exchange_type is not None and spec.exchange_type not in EXCHANGE_TYPES:
        raise UsageError(f"exchange_type must be one of {', '.join(EXCHANGE_TYPES)}")
    if spec.exchange and spec.routing_key is None and spec.queue is None and spec.exchange_type != "fanout":
        raise UsageError("an exchange needs a routing key (--routing-key) or a queue")
    if not isinstance(spec.headers, dict):
        raise UsageError("headers must be a JSON object")
    for key in ("link", "link_error"):
        value = getattr(spec, key)
        if isinstance(value, str):
            changes[key] = (value,)
        elif isinstance(value, list):
            changes[key] = tuple(value)
    if spec.task_id is not None and not isinstance(spec.task_id, str):
        raise UsageError("task id must be a string")
    return replace(spec, **changes) if changes else spec


def _number(value: Any, what: str) -> float:
    """Seconds from now: a finite number, not negative, ending before the year 10000 (Celery
    adds it to the time of sending)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{what} must be a number of seconds, not {value!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{what} must be a finite number of seconds, not {value!r}")
    if value < 0:
        raise UsageError(f"{what} must not be negative")
    if value > _MAX_SECONDS:
        raise UsageError(f"{what} of {value:g} s ends after the year 9999 (a date-time cannot hold it)")
    # 30.0 from the command line is the 30 a Python caller would pass (headers show it)
    return int(value) if isinstance(value, float) and value.is_integer() else value


# from now to the last date-time Python holds, with a day to spare for the clock and time zones
_MAX_SECONDS = (_dt.datetime(9999, 12, 30) - _dt.datetime(2000, 1, 1)).total_seconds() - \
    (_dt.datetime.now() - _dt.datetime(2000, 1, 1)).total_seconds()
