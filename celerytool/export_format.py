"""The export format, in one place: ``celerytool export`` writes one NDJSON line per message
(``ExportRecord.line``), ``celerytool import`` reads them back (``parse_line``).

A line: ``{"v": 1, "broker", "queue", "priority", "raw"`` (the stored message, byte-exact: a
tagged bytes value), a summary of the decoded message (``SUMMARY_KEYS``), and on RabbitMQ
``"amqp"`` (the basic properties of ``AMQP_*_PROPERTIES`` and the headers; ``raw`` is then
the body) ``}``. docs/repairing.md describes it for users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from celerytool.errors import DataError
from celerytool.jsontext import dumps, quote, small_text
from celerytool.model import Message


@dataclass(frozen=True)
class ExportRecord:
    """One line of an export file: the stored message byte-exact plus a summary.

    The summary is ``summary``, or, when empty and ``message`` is given, the
    ``SUMMARY_KEYS`` of the decoded message.
    """

    broker: str
    queue: str
    priority: int  # Redis: the priority bucket the message sat in
    raw: bytes
    summary: dict[str, Any]
    amqp: dict[str, Any] | None = None  # RabbitMQ: the AMQP properties and headers (raw is the body)
    message: Message | None = None

    def summary_json(self) -> dict[str, Any]:
        if self.summary or self.message is None:
            return self.summary
        data = self.message.to_json()
        return {k: data[k] for k in SUMMARY_KEYS}

    def to_json(self) -> dict[str, Any]:
        from celerytool.jsontext import to_jsonable

        out = {"v": 1, "broker": self.broker, "queue": self.queue, "priority": self.priority,
               "raw": to_jsonable(self.raw), **self.summary_json()}
        if self.amqp is not None:
            out["amqp"] = to_jsonable(self.amqp)
        return out

    def line(self) -> str:
        """``dumps(self.to_json())`` and a newline, fast for plain JSON messages."""
        return export_line(self)


# The AMQP basic properties (besides ``headers``) an export record's ``amqp`` field holds, as
# pika and kombu name them: part of the export format, so both broker packages and
# ``transfer`` read this one list.
AMQP_CONTENT_PROPERTIES = ("content_type", "content_encoding")
AMQP_OTHER_PROPERTIES = ("correlation_id", "reply_to", "delivery_mode", "priority", "expiration",
                         "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id")

SUMMARY_KEYS = ("id", "task", "args", "kwargs", "eta", "expires", "retries", "error")


def export_line(record: Any) -> str:
    """One export line: ``dumps(record.to_json())`` + newline, without converting
    a plain JSON message's big values (their stored text is used as it is)."""
    m = record.message
    texts = getattr(m, "json_texts", None)
    if (texts is None or record.summary or record.amqp is not None or m.error is not None
            or m.extra or m.redelivered is not None):
        return dumps(record.to_json()) + "\n"
    try:
        raw = '{"__type__":"bytes","__value__":' + quote(record.raw.decode("utf-8")) + "}"
    except UnicodeDecodeError:
        return dumps(record.to_json()) + "\n"
    s = small_text
    return (f'{{"v":1,"broker":{s(record.broker)},"queue":{s(record.queue)},'
            f'"priority":{s(record.priority)},"raw":{raw},"id":{s(m.id)},"task":{s(m.task)},'
            f'"args":{texts[0]},"kwargs":{texts[1]},"eta":{s(m.eta)},"expires":{s(m.expires)},'
            f'"retries":{s(m.retries)},"error":null}}\n')


def parse_line(line: bytes, where: str) -> ExportRecord:
    try:
        data = json.loads(line)
    except RecursionError:
        raise DataError(f"{where}: nests too deeply to be a line written by `celerytool export`") from None
    except ValueError as exc:
        raise DataError(f"{where}: not JSON ({exc}); expected a line written by `celerytool export`") from None
    if not isinstance(data, dict) or "raw" not in data or "queue" not in data:
        raise DataError(f"{where}: not an export record (no 'raw' and 'queue' fields)")
    raw = _raw(data["raw"], where)
    prio = data.get("priority", 0)
    if not isinstance(prio, int) or isinstance(prio, bool):
        raise DataError(f"{where}: 'priority' must be an integer")
    amqp = data.get("amqp")
    if amqp is not None and not isinstance(amqp, dict):
        raise DataError(f"{where}: 'amqp' must be an object of AMQP properties")
    return ExportRecord(str(data.get("broker") or "redis"), str(data["queue"]), prio, raw, {}, amqp=amqp)


def _raw(value: Any, where: str) -> bytes:
    import base64
    import binascii

    if isinstance(value, dict) and value.get("__type__") in ("bytes", "base64"):
        if value["__type__"] == "bytes" and isinstance(value.get("__value__"), str):
            return value["__value__"].encode("utf-8")
        try:
            return base64.b64decode(value.get("__value__") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DataError(f"{where}: 'raw' is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise DataError(f"{where}: 'raw' must be text or a tagged bytes value")
