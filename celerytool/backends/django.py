"""django-celery-results (``django-db+<database URL>``, celerytool's spelling).

Tables ``django_celery_results_taskresult`` and ``..._groupresult``: each row
keeps its value as text with the ``content_type`` / ``content_encoding`` it
was serialized with (``binary`` ones, such as pickle, base64-encoded).  With
``result_extended`` the task's arguments are stored as their ``argsrepr`` /
``kwargsrepr`` text, read back here as Python literals when they are ones.
"""

from __future__ import annotations

import ast
import base64
import binascii
from typing import Any

from celerytool.backends.decode import group_result
from celerytool.backends.layout import Layout, Row, Table, as_bytes, stored_task, utc_text
from celerytool.codecs.limits import Limits
from celerytool.codecs.serializers import deserialize
from celerytool.errors import DecodeError
from celerytool.model import TaskResult

TASK_COLUMNS = {
    "id": "int", "task_id": "str", "periodic_task_name": "str", "task_name": "str", "task_args": "text",
    "task_kwargs": "text", "status": "str", "worker": "str", "content_type": "str",
    "content_encoding": "str", "result": "text", "date_created": "datetime", "date_started": "datetime",
    "date_done": "datetime", "traceback": "text", "meta": "text",
}
GROUP_COLUMNS = {"id": "int", "group_id": "str", "date_created": "datetime", "date_done": "datetime",
                 "content_type": "str", "content_encoding": "str", "result": "text"}
MAX_REPR = 100_000  # argsrepr is at most a few KB; do not parse anything much larger


def decode_content(row: Row, value: Any, limits: Limits) -> Any:
    """django-celery-results' ``decode_content``: base64 for binary encodings, then the serializer."""
    if value is None or value == "":
        return None
    raw = as_bytes(value)
    if len(raw) > limits.max_bytes:
        raise DecodeError(f"stored value of {len(raw)} bytes exceeds {limits.max_bytes} (raise with --max-size)")
    encoding = row.get("content_encoding")
    if encoding == "binary":
        try:
            raw = base64.b64decode(raw)
        except (binascii.Error, ValueError) as exc:
            raise DecodeError(f"not valid base64: {exc}") from None
        encoding = None
    return deserialize(raw, row.get("content_type"), encoding, limits)


def _literal(value: Any) -> Any:
    """``"(2, 3)"`` (an argsrepr) -> [2, 3]; text that is not a literal stays text."""
    if not isinstance(value, str) or len(value) > MAX_REPR:
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value
    return list(parsed) if isinstance(parsed, tuple) else parsed


def task_row(task_id: str, row: Row, limits: Limits) -> TaskResult:
    errors: list[str] = []

    def decode(column: str) -> Any:
        try:
            return decode_content(row, row.get(column), limits)
        except DecodeError as exc:
            errors.append(f"{column}: {exc}")
            return None

    meta = decode("meta")
    return stored_task(task_id, row, result=decode("result"), errors=errors,
                       children=meta.get("children") if isinstance(meta, dict) else None,
                       name=row.get("task_name"), args=_literal(decode("task_args")),
                       kwargs=_literal(decode("task_kwargs")), meta=meta)


def group_row(group_id: str, row: Row, limits: Limits) -> TaskResult:
    try:
        stored = decode_content(row, row.get("result"), limits)
    except DecodeError as exc:
        return TaskResult(id=group_id, status="UNKNOWN", error=f"result: {exc}", group=True,
                          date_done=utc_text(row.get("date_done")))
    return group_result(group_id, {"result": stored, "date_done": utc_text(row.get("date_done"))})


DJANGO_LAYOUT = Layout(
    what="django-celery-results",
    task=Table("django_celery_results_taskresult", None, "task_id", TASK_COLUMNS),
    group=Table("django_celery_results_groupresult", None, "group_id", GROUP_COLUMNS),
    name_column="task_name",
    task_row=task_row,
    group_row=group_row,
    missing_hint="is this the Django project's database, migrated with django_celery_results installed?",
)
