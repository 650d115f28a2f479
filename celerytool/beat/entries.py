"""From a store's raw description to the ``BeatEntry`` shown (one place for every store)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from celerytool.beat.schedules import UTC, Schedule, Unknown, next_due, words
from celerytool.model import BeatEntry


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def make_entry(name: str, task: object, schedule: Schedule, *, args: Any, kwargs: Any, options: object,
               enabled: bool | None, last_run_at: dt.datetime | None, total_run_count: object, tz: str | None,
               store: str, now: dt.datetime, note: str | None = None,
               due_now_if_never_run: bool = False) -> BeatEntry:
    if last_run_at is None and due_now_if_never_run:  # RedBeat: never run means due now
        due, why = (now, None) if not isinstance(schedule, Unknown) else next_due(schedule, None, now, tz)
    else:
        due, why = next_due(schedule, last_run_at, now, tz)
    if enabled is False:
        why = "disabled" + (f"; {why}" if why else "")
    return BeatEntry(name=name, task=task if isinstance(task, str) else None, schedule=words(schedule, tz),
                     args=args, kwargs=kwargs, options=dict(options) if isinstance(options, dict) else {},
                     enabled=enabled, last_run_at=iso(last_run_at),
                     total_run_count=total_run_count if type(total_run_count) is int else None,
                     next_due=iso(due), note=note or why, store=store)
