"""How a result table looks: names, Celery's exact columns, and row -> ``TaskResult``.

One ``Layout`` per kind of table set: Celery's own database backend
(``celerydb.py``) and django-celery-results (``django.py``).  ``sql.py``
reads any layout the same way.  Column types are named here in words and
turned into SQLAlchemy types in ``sql.py``, so this module imports nothing
heavy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from celerytool.codecs.limits import Limits
from celerytool.model import TaskResult

Row = Mapping[str, Any]
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


def utc_text(value: Any) -> str | None:
    """A stored ``date_done`` as Redis shows it: ISO 8601 in UTC (naive values are UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return value.isoformat()
    return str(value)


def as_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)
