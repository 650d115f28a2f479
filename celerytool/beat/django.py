"""django-celery-beat's tables (2.x; wire-format section 11), read and changed with SQL.

One query reads every periodic task with its schedule (interval, crontab with its own time
zone, solar, clocked). ``enable``/``disable`` update ``enabled`` and bump
``django_celery_beat_periodictasks.last_update`` in the same transaction: a running
DatabaseScheduler reloads its schedule only when that grows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

from celerytool.beat.entries import make_entry
from celerytool.beat.schedules import Clocked, Cron, Interval, Schedule, Solar, Unknown
from celerytool.errors import DataError, NotFound
from celerytool.model import BeatEntry
from celerytool.urls import BrokerURL

T = "django_celery_beat_"
PERIODS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 1e-6}
QUERY = f"""
SELECT t.name, t.task, t.args, t.kwargs, t.queue, t.exchange, t.routing_key, t.priority, t.headers,
       t.expires, t.expire_seconds, t.one_off, t.enabled, t.last_run_at, t.total_run_count,
       i.every, i.period,
       c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, c.timezone,
       s.event, s.latitude, s.longitude,
       k.clocked_time
FROM {T}periodictask t
LEFT JOIN {T}intervalschedule i ON t.interval_id = i.id
LEFT JOIN {T}crontabschedule c ON t.crontab_id = c.id
LEFT JOIN {T}solarschedule s ON t.solar_id = s.id
LEFT JOIN {T}clockedschedule k ON t.clocked_id = k.id
ORDER BY t.name
"""
# the query's columns, in its order
Row = namedtuple("Row", "name task args kwargs queue exchange routing_key priority headers expires expire_seconds "
                        "one_off enabled last_run_at total_run_count every period minute hour day_of_week "
                        "day_of_month month_of_year timezone event latitude longitude clocked_time")
SCHEDULE_COLUMNS = slice(Row._fields.index("every"), None)


_EMPTY: dict[str, list[Any] | dict[str, Any]] = {"[]": [], "{}": {}}


def _json(text: Any, default: Any) -> Any:
    if text is None or text == "":
        return default
    if text in _EMPTY:  # most rows: no need to parse
        return type(_EMPTY[text])()
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text  # shown as stored


def _aware(value: object) -> dt.datetime | None:
    if isinstance(value, str):  # SQLite's driver gives the stored text
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)  # Django stores UTC


def schedule_of(r: Row) -> Schedule:
    if r.every is not None and r.period in PERIODS:
        return Interval(float(r.every) * PERIODS[r.period])
    if r.minute is not None:
        return Cron(str(r.minute), str(r.hour), str(r.day_of_week), str(r.day_of_month), str(r.month_of_year),
                    str(r.timezone) if r.timezone else None)
    if r.event is not None:
        try:
            return Solar(str(r.event), float(r.latitude), float(r.longitude))
        except (TypeError, ValueError):
            return Unknown(f"solar {r.event} {r.latitude},{r.longitude}")
    if r.clocked_time is not None and (when := _aware(r.clocked_time)) is not None:
        return Clocked(when)
    return Unknown("none (no interval, crontab, solar or clocked schedule)")


class DjangoBeatStore:
    kind = "django"

    def __init__(self, url: BrokerURL, connect_timeout: float) -> None:
        from celerytool.backends.sql_link import SqlLink

        self.db = SqlLink(url, "django-celery-beat database", connect_timeout=connect_timeout, readonly=False)
        self.url = url
        self.warnings: list[str] = []

    def describe(self) -> str:
        return f"django-celery-beat at {self.url.redacted()}"

    def close(self) -> None:
        self.db.close()

    def _rows(self) -> list[Row]:
        try:
            with self.db.errors():
                return list(map(Row._make, self.db.execute(QUERY).fetchall()))
        except Exception as exc:
            if "periodictask" in str(exc) and ("exist" in str(exc) or "no such table" in str(exc)):
                raise DataError(f"no django-celery-beat tables at {self.url.redacted()} "
                                f"({T}periodictask): run its migrations (manage.py migrate django_celery_beat)") from None
            raise

    def entries(self, now: dt.datetime | None = None) -> Iterator[BeatEntry]:
        """Every entry by name: the query runs now; each entry is made as it is asked for."""
        return self._entries(self._rows(), now or dt.datetime.now(dt.timezone.utc))

    def _entries(self, rows: list[Row], now: dt.datetime) -> Iterator[BeatEntry]:
        schedules: dict[tuple[Any, ...], Schedule] = {}  # rows share schedule rows
        rows.reverse()
        while rows:
            r = rows.pop()  # each row let go once made into an entry
            key = r[SCHEDULE_COLUMNS]
            schedule = schedules.get(key)
            if schedule is None:
                schedule = schedules[key] = schedule_of(r)
            options: dict[str, Any] = {k: v for k, v in (("queue", r.queue), ("exchange", r.exchange),
                                                         ("routing_key", r.routing_key), ("priority", r.priority))
                                       if v not in (None, "")}
            if r.expires is not None:
                expires = _aware(r.expires)
                options["expires"] = expires.isoformat() if expires is not None else str(r.expires)
            elif r.expire_seconds is not None:
                options["expires"] = r.expire_seconds
            headers = _json(r.headers, {})
            if headers:
                options["headers"] = headers
            if r.one_off:
                options["one_off"] = True
            yield make_entry(str(r.name), r.task, schedule, args=_json(r.args, []), kwargs=_json(r.kwargs, {}),
                             options=options, enabled=bool(r.enabled), last_run_at=_aware(r.last_run_at),
                             total_run_count=r.total_run_count, tz=None, store=self.kind, now=now)

    def set_enabled(self, name: str, enabled: bool) -> None:
        db = self.db
        with db.errors():
            db.conn.rollback()  # end the listing's transaction: the change is one transaction of its own
            now = self._now()
            done = db.execute(f"UPDATE {T}periodictask SET enabled = %s, date_changed = %s WHERE name = %s",
                              (enabled, now, name))
            if done.rowcount == 0:
                db.conn.rollback()
                raise NotFound(f"no periodic task {name!r} in {self.describe()}")
            now = self._now()
            if db.execute(f"UPDATE {T}periodictasks SET last_update = %s WHERE ident = 1", (now,)).rowcount == 0:
                db.execute(f"INSERT INTO {T}periodictasks (ident, last_update) VALUES (1, %s)", (now,))
            db.conn.commit()

    def _now(self) -> dt.datetime:
        """Now as Django stores it: aware on PostgreSQL, naive UTC on MySQL and SQLite."""
        now = dt.datetime.now(dt.timezone.utc)
        return now if self.db.backend == "postgresql" else now.replace(tzinfo=None)
