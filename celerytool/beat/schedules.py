"""Schedules of periodic tasks: one plain description per kind, in words, and the next due
time computed with Celery's own schedule classes (never the user's app).

A store turns what it holds into one of ``Interval``, ``Cron``, ``Solar``, ``Clocked`` or
``Unknown`` (a class we do not know, shown by name); ``words`` and ``next_due`` do the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

UTC = dt.timezone.utc


@dataclass(frozen=True)
class Interval:
    seconds: float
    relative: bool = False


@dataclass(frozen=True)
class Cron:
    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    timezone: str | None = None  # IANA name; None: the scheduler's


@dataclass(frozen=True)
class Solar:
    event: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Clocked:
    when: dt.datetime


@dataclass(frozen=True)
class Unknown:
    what: str  # e.g. the class name of a schedule we cannot read


Schedule = Interval | Cron | Solar | Clocked | Unknown


def _seconds(value: float) -> str:
    total = float(value)
    if total >= 1 and total == int(total):
        n = int(total)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if n % size == 0 and n >= size:
                return f"{n // size}{unit}"
        return f"{n}s"
    return f"{total:g}s"


def words(s: Schedule, default_tz: str | None = None) -> str:
    """``every 30s``, ``crontab 0 */2 * * * (Europe/Paris)``, ``solar sunrise 48.85,2.35``,
    ``clocked 2026-12-24T18:00Z``."""
    if isinstance(s, Interval):
        return f"every {_seconds(s.seconds)}" + (" (relative)" if s.relative else "")
    if isinstance(s, Cron):
        tz = s.timezone or default_tz
        # crontab's order: minute hour day-of-month month day-of-week
        text = f"crontab {s.minute} {s.hour} {s.day_of_month} {s.month_of_year} {s.day_of_week}"
        return text + (f" ({tz})" if tz else "")
    if isinstance(s, Solar):
        return f"solar {s.event} {s.lat:g},{s.lon:g}"
    if isinstance(s, Clocked):
        when = s.when if s.when.tzinfo else s.when.replace(tzinfo=UTC)
        return "clocked " + when.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"unknown schedule {s.what}"


class _App:
    """A bare Celery app with the scheduler's time zone (Celery's schedules read app.timezone)."""

    _apps: dict[str, Any] = {}

    @classmethod
    def get(cls, tz: str | None) -> Any:
        key = tz or "UTC"
        if key not in cls._apps:
            from celery import Celery

            app = Celery("celerytool-beat", set_as_current=False)
            app.conf.timezone = key
            app.conf.enable_utc = True
            cls._apps[key] = app
        return cls._apps[key]


@functools.lru_cache(maxsize=4096)
def celery_schedule(s: Schedule, tz: str | None, now: dt.datetime) -> Any:
    """The Celery schedule object for ``s`` (None for clocked / unknown); one per schedule
    (entries share them: django-celery-beat's rows point at shared schedule rows). Its clock
    (``nowfun``) is ``app.now()`` at ``now``: one instant for the whole listing, which also
    spares each entry Celery's two reads of the clock."""
    from celery import schedules

    app = _App.get((s.timezone or tz) if isinstance(s, Cron) else tz)  # a crontab row may carry its zone
    clock = now.astimezone(app.timezone)  # what app.now() gives at that instant

    def nowfun() -> dt.datetime:
        return clock

    if isinstance(s, Interval):
        return schedules.schedule(dt.timedelta(seconds=s.seconds), s.relative, nowfun=nowfun, app=app)
    if isinstance(s, Cron):
        return schedules.crontab(s.minute, s.hour, s.day_of_week, s.day_of_month, s.month_of_year,
                                 nowfun=nowfun, app=app)
    if isinstance(s, Solar):
        return schedules.solar(s.event, s.lat, s.lon, nowfun=nowfun, app=app)
    return None


def next_due(s: Schedule, last_run_at: dt.datetime | None, now: dt.datetime,
             tz: str | None = None) -> tuple[dt.datetime | None, str | None]:
    """(When the entry is next due, UTC; why it cannot be told). As beat decides: from the last
    run (none yet: beat counts from now, when it first sees the entry). Entries with the same
    schedule and last run share one computation; for a crontab, the same minute of the last
    run (Celery's crontab sets second and microsecond to 0: they cannot change the answer)."""
    if isinstance(s, Cron) and last_run_at is not None and last_run_at.year > 1972:
        # (since 1972 every zone's offset is whole minutes: the minute is the same in any zone)
        last_run_at = last_run_at.replace(second=0, microsecond=0)
    key = (s, last_run_at, tz, now)
    if key not in _DUE:
        if len(_DUE) > 100_000:
            _DUE.clear()
        _DUE[key] = _next_due(s, last_run_at, now, tz)
    return _DUE[key]


_DUE: dict[Any, tuple[dt.datetime | None, str | None]] = {}


def _next_due(s: Schedule, last_run_at: dt.datetime | None, now: dt.datetime,
              tz: str | None) -> tuple[dt.datetime | None, str | None]:
    if isinstance(s, Clocked):
        when = s.when if s.when.tzinfo else s.when.replace(tzinfo=UTC)
        return when.astimezone(UTC), None
    if isinstance(s, Unknown):
        return None, f"unknown schedule {s.what}"
    try:
        sched = celery_schedule(s, tz, now)
        last = last_run_at or now
        if last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        due = (sched.now() + sched.remaining_estimate(last)).astimezone(UTC)
    except ImportError as exc:  # solar needs ephem (celery[solar])
        return None, f"needs {exc.name or 'ephem'} (pip install 'celery[solar]')"
    except Exception as exc:  # a crontab field Celery refuses, a solar event it does not know
        return None, f"{type(exc).__name__}: {exc}"
    if isinstance(s, Cron):  # whole minutes, as Celery's crontab gives them
        due = (due + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
    return due, None
