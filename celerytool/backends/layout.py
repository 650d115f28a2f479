"""How a result table looks: names, Celery's exact columns, and row -> ``TaskResult``.

One ``Layout`` per kind of table set: Celery's own database backend
(``celerydb.py``) and django-celery-results (``django.py``).  ``sql.py``
reads any layout the same way.  Column types are named here in words and
turned into SQLAlchemy types in ``sql.py``, so this module imports nothing
heavy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from celerytool.backends.decode import EXCEPTION_STATES, exception_info, plain
from celerytool.codecs.limits import Limits
from celerytool.errors import DecodeError
from celerytool.model import TaskResult


class Row(Protocol):
    """A stored row read by column name: SQLAlchemy's ``RowMapping`` (whose keys may also be
    columns, so ``Mapping[str, Any]`` would refuse it) or a plain dict."""

    def get(self, column: str, /) -> Any: ...


RowReader = Callable[[str, Row, Limits], TaskResult]


@dataclass(frozen=True)
class Table:
    name: str
    schema: str | None
    id_column: str
    columns: dict[str, str]  # column -> "int" | "str" | "text" | "binary" | "datetime"

    @property
    def shown(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class Layout:
    what: str  # for messages: "Celery database backend", "django-celery-results"
    task: Table
    group: Table
    name_column: str  # the task name column (--task)
    task_row: RowReader
    group_row: RowReader
    missing_hint: str  # what to do when a table does not exist


def table_name(text: str) -> tuple[str, str | None]:
    """``schema.table`` or ``table`` -> (table, schema)."""
    schema, dot, name = text.rpartition(".")
    return (name, schema) if dot else (text, None)


def utc_text(value: object) -> str | None:
    """A stored ``date_done`` as Redis shows it: ISO 8601 in UTC (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return value.isoformat()
    return str(value)


def text_id(value: object) -> str:
    """A stored task id as text: SQLite keeps a BLOB or a number in a text column too."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    return str(value)


def as_bytes(value: Any) -> bytes:
    """A stored value's bytes; a number (SQLite keeps one in a BLOB column too) is no stored
    value: DecodeError, not ``bytes(5)``'s five zero bytes (or ``bytes(2**62)``'s MemoryError)."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise DecodeError(f"stored value is a {type(value).__name__}, not bytes")


def stored_task(task_id: str, row: Row, *, result: Any, children: Any, errors: list[str],
                name: str | None = None, args: Any = None, kwargs: Any = None,
                **meta: Any) -> TaskResult:
    """One task row as a ``TaskResult``, its values already decoded by the layout."""
    status = str(row.get("status") or "PENDING")
    return TaskResult(
        id=task_id,
        status=status,
        result=result,
        traceback=plain(row.get("traceback")),
        date_done=utc_text(row.get("date_done")),
        children=children if children is not None else [],  # no empty list is stored
        exception=exception_info(result) if status in EXCEPTION_STATES else None,
        name=name,
        args=args,
        kwargs=kwargs,
        worker=row.get("worker"),
        retries=row.get("retries"),
        queue=row.get("queue"),
        error="; ".join(errors) or None,
        meta={"status": status, "result": result, "date_done": row.get("date_done"),
              "traceback": row.get("traceback"), **meta},
    )
