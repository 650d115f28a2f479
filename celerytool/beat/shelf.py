"""The default beat scheduler's file (``celery.beat.PersistentScheduler``): read-only.

``celerybeat-schedule`` is a ``shelve``: a dbm database (gnu, ndbm, dumb, or Python 3.13's
sqlite3 flavour) whose values are pickles: ``entries`` (name -> ``celery.beat.ScheduleEntry``),
``tz``, ``utc_enabled``. Every pickle is read with the inert unpickler (nothing in the file
runs; unknown classes are shown by name), within the size limits. Beat rewrites the file
itself, so celerytool never writes it.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from celerytool.beat.entries import make_entry
from celerytool.beat.schedules import Clocked, Cron, Interval, Schedule, Solar, Unknown
from celerytool.codecs.inert_pickle import InertUnpickler, Opaque, _opaque_class, inert_loads
from celerytool.codecs.limits import Limits
from celerytool.errors import DataError, DecodeError, NotFound, UsageError
from celerytool.model import BeatEntry

SUFFIXES = ("", ".db", ".dat", ".dir", ".bak")  # the names beat itself looks for
SQLITE_MAGIC = b"SQLite format 3\x00"
READ_ONLY = ("the beat file is read-only here: beat rewrites it on every tick (change the app's "
             "beat_schedule, or use RedBeat / django-celery-beat to change entries at run time)")


class _ZoneInfo:
    """What ``zoneinfo.ZoneInfo`` is in a beat pickle: only its ``_unpickle(key, from_cache)``."""

    @staticmethod
    def _unpickle(key: Any, _from_cache: Any = None) -> dt.tzinfo:
        return _zone(key)


def _zone(key: Any) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(str(key))  # reads a tz database file: no code, validated key
    except Exception:
        return dt.timezone.utc


def _pytz(zone: Any, *_: Any) -> dt.tzinfo:  # pytz._p(zone, utcoffset, dst, tzname) (Celery <= 5.2)
    return _zone(zone)


def _getattr(obj: Any, name: Any) -> Any:
    if obj is _ZoneInfo and name == "_unpickle":
        return _ZoneInfo._unpickle
    return _opaque_class("getattr", str(name))


def _datetime(*args: Any) -> Any:
    """datetime(state bytes, tzinfo): a tzinfo we did not rebuild (an unknown class) is dropped
    (the time is then taken as UTC) instead of failing the whole file."""
    if len(args) == 2 and not isinstance(args[1], dt.tzinfo):
        args = args[:1]
    return dt.datetime(*args)


class BeatUnpickler(InertUnpickler):
    """The inert unpickler, plus the time zones beat writes (ZoneInfo, pytz, UTC)."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("zoneinfo", "zoneinfo._zoneinfo") and name == "ZoneInfo":
            return _ZoneInfo
        if (module, name) == ("builtins", "getattr"):
            return _getattr
        if (module, name) == ("pytz", "_p"):
            return _pytz
        if (module, name) in (("pytz", "_UTC"), ("pytz", "utc")):
            return lambda *a: dt.timezone.utc
        if (module, name) == ("datetime", "datetime"):
            return _datetime
        return super().find_class(module, name)


class ShelveStore:
    kind = "file"

    def __init__(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.warnings: list[str] = []

    def describe(self) -> str:
        return self.path

    def close(self) -> None:
        return None

    # -- reading the file --------------------------------------------------------------
    def _raw(self) -> dict[bytes, bytes]:
        """The values of the keys beat writes, from whichever dbm flavour holds them."""
        wanted = (b"entries", b"tz", b"utc_enabled")
        for suffix in SUFFIXES:
            candidate = self.path + suffix
            if os.path.isfile(candidate):
                break
        else:
            raise NotFound(f"no beat schedule file at {self.path} (beat writes celerybeat-schedule in its "
                           "working directory, or where -s/--schedule says)")
        if _is_sqlite(candidate):
            return self._sqlite(candidate, wanted)
        import dbm

        base = self.path if not os.path.isfile(self.path) or suffix == "" else self.path
        try:
            flavour = dbm.whichdb(base)
        except OSError as exc:
            raise DataError(f"cannot read {self.path}: {exc}") from None
        if not flavour:
            raise DataError(f"{self.path} is not a beat schedule file (not a dbm database)")
        try:
            import importlib

            module = importlib.import_module(flavour)
            db = module.open(base, "r")
        except ModuleNotFoundError:
            raise DataError(f"{self.path} is a {flavour} database, which this Python cannot read") from None
        except Exception as exc:
            raise DataError(f"cannot open {self.path} ({flavour}): {exc}") from None
        try:
            return {k: db[k] for k in wanted if k in db}
        except Exception as exc:
            raise DataError(f"cannot read {self.path} ({flavour}): {exc}") from None
        finally:
            db.close()

    @staticmethod
    def _sqlite(path: str, wanted: tuple[bytes, ...]) -> dict[bytes, bytes]:
        import sqlite3
        from urllib.parse import quote

        try:
            conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
            try:
                rows = conn.execute("SELECT key, value FROM Dict").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DataError(f"cannot read {path} (dbm.sqlite3): {exc}") from None
        out = {bytes(k) if not isinstance(k, str) else k.encode(): bytes(v) for k, v in rows}
        return {k: out[k] for k in wanted if k in out}

    def _load(self, raw: bytes, what: str) -> Any:
        try:
            return inert_loads(raw, self.limits, BeatUnpickler)
        except DecodeError as exc:
            raise DataError(f"{self.path}: the {what} cannot be read: {exc}") from None

    # -- the store's interface ----------------------------------------------------------
    def entries(self, now: dt.datetime | None = None) -> list[BeatEntry]:
        now = now or dt.datetime.now(dt.timezone.utc)
        raw = self._raw()
        if b"entries" not in raw:
            raise DataError(f"{self.path} holds no beat entries (not a celerybeat-schedule file?)")
        tz = self._load(raw[b"tz"], "time zone") if b"tz" in raw else None
        tz = tz if isinstance(tz, str) else None
        entries = self._load(raw[b"entries"], "entries")
        if not isinstance(entries, dict):
            raise DataError(f"{self.path}: 'entries' is not a dict of schedule entries")
        out = []
        for key, value in entries.items():
            out.append(self._entry(str(key), value, tz, now))
        return sorted(out, key=lambda e: e.name)

    def _entry(self, key: str, value: Any, tz: str | None, now: dt.datetime) -> BeatEntry:
        if not (isinstance(value, Opaque) and value.qualname == "celery.beat.ScheduleEntry"):
            what = value.qualname if isinstance(value, Opaque) else type(value).__name__
            return make_entry(key, None, Unknown(what), args=None, kwargs=None, options={}, enabled=None,
                              last_run_at=None, total_run_count=None, tz=tz, store=self.kind, now=now,
                              note=f"not a celery.beat.ScheduleEntry: {what}")
        a = list(value.args) + [None] * (8 - len(value.args))
        name, task, last, count, schedule, args, kwargs, options = a[:8]
        last = last if isinstance(last, dt.datetime) else None
        return make_entry(str(name or key), task, schedule_of(schedule), args=args, kwargs=kwargs,
                          options=options, enabled=None, last_run_at=last, total_run_count=count, tz=tz,
                          store=self.kind, now=now)

    def set_enabled(self, name: str, enabled: bool) -> None:
        raise UsageError(READ_ONLY)


def _is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _cron_field(value: Any) -> str:
    if isinstance(value, (set, frozenset, list, tuple)):
        return ",".join(str(v) for v in sorted(value, key=str))
    return str(value)


def schedule_of(value: Any) -> Schedule:
    """A pickled Celery schedule (an Opaque record of it) as a plain description."""
    if isinstance(value, dt.timedelta):
        return Interval(value.total_seconds())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Interval(float(value))
    if not isinstance(value, Opaque):
        return Unknown(type(value).__name__)
    args = value.args
    if value.qualname == "celery.schedules.schedule" and args:
        every = args[0]
        seconds = every.total_seconds() if isinstance(every, dt.timedelta) else every
        if isinstance(seconds, (int, float)):
            return Interval(float(seconds), bool(args[1]) if len(args) > 1 else False)
    if value.qualname == "celery.schedules.crontab" and len(args) == 5:
        return Cron(*(_cron_field(a) for a in args))
    if value.qualname == "celery.schedules.solar" and len(args) == 3:
        event, lat, lon = args
        if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
            return Solar(str(event), float(lat), float(lon))
    if value.qualname.endswith("clocked") and args and isinstance(args[0], dt.datetime):
        return Clocked(args[0])
    return Unknown(value.qualname)
