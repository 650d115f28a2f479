"""A kombu envelope read only as far as a selection needs: task and id first, body last.

Celery's protocol 2 writes ``"headers": {"lang": "py", "task": "...", "id": "..."``
in that order (``as_task_v2``), so task name and id are sliced straight out
of the stored bytes when that exact prefix is present and the values hold no
escapes.  Anything else (protocol 1, other producers, escaped text) falls
back to the full decode, so the fast path never changes a result.
"""

from __future__ import annotations

import re
from typing import Any

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.codecs.message import decode_envelope
from celerytool.model import Message

# values with a backslash (escapes) do not match: those take the full decode
_V2_RE = re.compile(rb'"headers": \{"lang": "py", "task": "([^"\\]*)", "id": "([^"\\]*)"')


class EnvelopeView:
    """A selection ``View`` over one stored envelope (or ``unacked`` entry)."""

    __slots__ = ("raw", "queue", "bucket", "limits", "age", "_msg", "_fast", "extra")

    def __init__(self, raw: bytes, queue: str | None = None, bucket: int | None = None,
                 limits: Limits = DEFAULT_LIMITS, age: float | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.raw = raw
        self.queue = queue
        self.bucket = bucket
        self.limits = limits
        self.age = age
        self.extra = extra
        self._msg: Message | None = None
        self._fast: tuple[str, str] | None | bool = False  # False: not tried yet

    def _task_id(self) -> tuple[str, str] | None:
        if self._fast is False:
            self._fast = fast_task_id(self.raw)
        return self._fast  # type: ignore[return-value]

    def task(self) -> str | None:
        fast = self._task_id()
        return fast[0] if fast else self.message().task

    def id(self) -> str | None:
        fast = self._task_id()
        return fast[1] if fast else self.message().id

    def message(self, position: int | None = None) -> Message:
        if self._msg is None:
            self._msg = decode_envelope(self.raw, queue=self.queue, position=position,
                                        priority=self.bucket, limits=self.limits,
                                        extra=self.extra)
        return self._msg

    def get(self, name: str) -> Any:
        if name == "task":
            return self.task()
        if name == "id":
            return self.id()
        if name == "size":
            return len(self.raw)
        if name == "queue":
            return self.queue
        if name == "age":
            return self.age
        return getattr(self.message(), name, None)


def fast_task_id(raw: bytes) -> tuple[str, str] | None:
    """(task, id) sliced from a Celery protocol-2 envelope, or None to decode fully."""
    m = _V2_RE.search(raw)
    if m is None:
        return None
    try:
        return m.group(1).decode("utf-8"), m.group(2).decode("utf-8")
    except UnicodeDecodeError:
        return None


# task, eta and retries of protocol 2, in as_task_v2's header order (no escapes)
_V2_HEAD_RE = re.compile(
    rb'"headers": \{"lang": "py", "task": "([^"\\]*)", "id": "[^"\\]*", "shadow": (?:null|"[^"\\]*"), '
    rb'"eta": (?:null|"([^"\\]*)"), "expires": (?:null|"[^"\\]*"), "group": (?:null|"[^"\\]*"), '
    rb'"group_index": (?:null|-?\d+), "retries": (\d+)')


def fast_task_eta_retries(raw: bytes) -> tuple[str, str | None, int] | None:
    """(task, eta, retries) sliced from a Celery protocol-2 envelope, or None to decode fully."""
    m = _V2_HEAD_RE.search(raw)
    if m is None:
        return None
    try:
        eta = m.group(2)
        return m.group(1).decode("utf-8"), None if eta is None else eta.decode("utf-8"), int(m.group(3))
    except UnicodeDecodeError:
        return None
