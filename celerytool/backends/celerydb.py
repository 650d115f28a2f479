"""Celery's database backend (``db+...``): tables ``celery_taskmeta`` / ``celery_tasksetmeta``.

The columns are exactly those of ``celery/backends/database/models.py``
(``Task``, ``TaskExtended``, ``TaskSet``); only the ones a table really has
are read, so tables made without ``result_extended`` work too.  ``result``,
``children``, ``args`` and ``kwargs`` hold values encoded with the result
serializer, decoded by their looks like every stored value (pickle inertly).
"""

from __future__ import annotations

from typing import Any

from celerytool.backends.decode import decode_value, group_result
from celerytool.backends.layout import (
    Layout,
    Row,
    Table,
    as_bytes,
    stored_task,
    table_name,
    utc_text,
)
from celerytool.codecs.limits import Limits
from celerytool.errors import DecodeError
from celerytool.model import TaskResult

TASK_COLUMNS = {
    "id": "int", "task_id": "str", "status": "str", "result": "binary", "date_done": "datetime",
    "traceback": "text", "children": "binary",
    # TaskExtended (result_extended=True)
    "name": "str", "args": "binary", "kwargs": "binary", "worker": "str", "retries": "int",
    "queue": "str", "stamps": "binary",
}
GROUP_COLUMNS = {"id": "int", "taskset_id": "str", "result": "binary", "date_done": "datetime"}


def _decoder(row: Row, limits: Limits, errors: list[str]):
    def decode(column: str) -> Any:
        raw = row.get(column)
        if raw is None:
            return None
        try:
            return decode_value(as_bytes(raw), limits)
        except DecodeError as exc:
            errors.append(f"{column}: {exc}")
            return None
    return decode


def task_row(task_id: str, row: Row, limits: Limits) -> TaskResult:
    errors: list[str] = []
    decode = _decoder(row, limits, errors)
    return stored_task(task_id, row, result=decode("result"), children=decode("children"), errors=errors,
                       name=row.get("name"), args=decode("args"), kwargs=decode("kwargs"))


def group_row(group_id: str, row: Row, limits: Limits) -> TaskResult:
    raw = row.get("result")
    try:
        stored = None if raw is None else decode_value(as_bytes(raw), limits)
    except DecodeError as exc:
        return TaskResult(id=group_id, status="UNKNOWN", error=f"result: {exc}", group=True,
                          date_done=utc_text(row.get("date_done")))
    return group_result(group_id, {"result": stored, "date_done": utc_text(row.get("date_done"))})


def celery_layout(table_names: dict[str, str]) -> Layout:
    """Celery's tables, renamed as its ``database_table_names`` setting does."""
    task_name, task_schema = table_name(table_names.get("task", "celery_taskmeta"))
    group_name, group_schema = table_name(table_names.get("group", "celery_tasksetmeta"))
    return Layout(
        what="Celery database backend",
        task=Table(task_name, task_schema, "task_id", TASK_COLUMNS),
        group=Table(group_name, group_schema, "taskset_id", GROUP_COLUMNS),
        name_column="name",
        task_row=task_row,
        group_row=group_row,
        missing_hint="another name? give the app's database_table_names as --backend-table-names task=T,group=G",
    )
