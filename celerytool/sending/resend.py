"""``retry``: a stored failed result -> the task to send again (or why it cannot be).

Celery stores a task's name, args, kwargs and queue with its result only
when the app runs with ``result_extended=True``; without them a failure
cannot be sent again, and ``plan`` says so for that id.  The new message
carries ``retry_of`` (a header naming the id it retries) and the old id as
its ``parent_id``, which Celery stores with the new result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celerytool.model import TaskResult
from celerytool.sending.build import ArgTexts

RETRY_HEADER = "retry_of"
RETRYABLE = frozenset({"FAILURE", "REVOKED"})


@dataclass(slots=True)
class RetryPlan:
    """One stored failure and the task that will be sent for it (``new_id`` set once sent)."""

    old_id: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str | None
    status: str
    exception: str | None
    new_id: str | None = None  # None until sent (or in a dry run: what it would be)
    texts: ArgTexts | None = None  # args' and kwargs' message texts, when worked out ahead

    def to_json(self) -> dict[str, Any]:
        return {"id": self.old_id, "new_id": self.new_id, "task": self.task, "args": list(self.args),
                "kwargs": self.kwargs, "queue": self.queue, "status": self.status,
                "exception": self.exception}


@dataclass(frozen=True)
class Skipped:
    """A selected id that cannot be retried, and why."""

    id: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "skipped": self.reason}


def plan(r: TaskResult, *, statuses: frozenset[str] = RETRYABLE, queue: str | None = None) -> RetryPlan | Skipped:
    """What to send again for ``r``; ``queue`` overrides the stored one."""
    if r.error is not None:
        return Skipped(r.id, f"its stored result cannot be decoded ({r.error})")
    if r.status not in statuses:
        state = "unknown id (PENDING)" if r.status == "PENDING" else f"status {r.status}"
        return Skipped(r.id, f"not a {'/'.join(sorted(statuses))} result: {state}")
    if not r.name:
        return Skipped(r.id, "no task name stored with it (the app stores name, args and kwargs "
                             "only with result_extended=True)")
    if r.args is None and r.kwargs is None:
        return Skipped(r.id, "no args / kwargs stored with it (result_extended=True stores them)")
    args = r.args if r.args is not None else []
    kwargs = r.kwargs if r.kwargs is not None else {}
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        return Skipped(r.id, "its stored args / kwargs are not a list and a mapping")
    exc = (r.exception or {}).get("type")
    # old_id, task, args, kwargs, queue, status, exception (by position: a hundred thousand at a time)
    return RetryPlan(r.id, r.name, tuple(args), dict(kwargs), queue or r.queue, r.status,
                     str(exc) if exc else None)
