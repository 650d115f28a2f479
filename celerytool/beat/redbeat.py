"""RedBeat's schedule in Redis (celery-redbeat 2.x; wire-format section 11).

``<prefix>:schedule`` is a sorted set of entry keys scored by their next due time (UTC epoch
seconds); each entry key ``<prefix><name>`` is a hash: ``definition`` (JSON: name, task, args,
kwargs, options, schedule, enabled) and ``meta`` (JSON: last_run_at, total_run_count). Objects
are tagged with ``"__type__"`` (datetime, interval, crontab, rrule, weekday). RedBeat reads the
definition of a due entry on every tick, so ``enabled: false`` stops a running beat from
sending it (and a beat restarted with the entry in its static ``beat_schedule`` enables it again).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from celerytool.beat.entries import make_entry
from celerytool.beat.schedules import Cron, Interval, Schedule, Unknown
from celerytool.clients.redispy import connect, redis_errors
from celerytool.errors import DataError, NotFound
from celerytool.model import BeatEntry
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from redis import Redis

PAGE = 1000


def _datetime(d: dict[str, Any]) -> dt.datetime | None:
    try:
        zone = d.get("timezone", "UTC")
        if isinstance(zone, (int, float)):
            tz: dt.tzinfo = dt.timezone(dt.timedelta(seconds=zone))
        elif zone in ("UTC", None):
            tz = dt.timezone.utc
        else:
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(str(zone))
        return dt.datetime(int(d["year"]), int(d["month"]), int(d["day"]), int(d.get("hour", 0)),
                           int(d.get("minute", 0)), int(d.get("second", 0)), int(d.get("microsecond", 0)), tzinfo=tz)
    except Exception:  # a malformed value: shown as unknown, never a crash
        return None


def schedule_of(value: Any) -> Schedule:
    if not isinstance(value, dict):
        return Unknown(type(value).__name__)
    kind = value.get("__type__")
    if kind == "interval" and isinstance(value.get("every"), (int, float)):
        return Interval(float(value["every"]), bool(value.get("relative")))
    if kind == "crontab":
        return Cron(*(str(value.get(k, "*")) for k in ("minute", "hour", "day_of_week", "day_of_month",
                                                       "month_of_year")))
    return Unknown(str(kind or "untagged object"))


def _load(raw: bytes | str | None, what: str, key: str) -> Any:  # a JSON value
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise DataError(f"{key}: the {what} is not JSON (not a RedBeat entry)") from None


class RedBeatStore:
    kind = "redbeat"

    def __init__(self, url: BrokerURL, prefix: str, connect_timeout: float, timezone: str | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self.timezone = timezone  # the beat app's: RedBeat's crontabs carry none
        self.warnings: list[str] = []

    @cached_property
    def client(self) -> Redis:
        return connect(self.url, connect_timeout=self.connect_timeout)

    def describe(self) -> str:
        return f"RedBeat at {self.url.redacted()} (prefix {self.prefix!r})"

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    @property
    def schedule_key(self) -> str:
        return self.prefix + ":schedule"

    def entries(self, now: dt.datetime | None = None) -> list[BeatEntry]:
        now = now or dt.datetime.now(dt.timezone.utc)
        import redis

        with redis_errors(self.url, "RedBeat's Redis"):
            try:
                members = cast("list[bytes]", self.client.zrange(self.schedule_key, 0, -1))  # no decode_responses
                keys = [k.decode(errors="replace") for k in members]
            except redis.ResponseError as exc:
                raise DataError(f"{self.schedule_key!r} is not RedBeat's schedule (a sorted set): {exc}") from None
            lock = self.client.pttl(self.prefix + ":lock")
            out = []
            for start in range(0, len(keys), PAGE):
                pipe = self.client.pipeline(transaction=False)
                for key in keys[start:start + PAGE]:
                    pipe.hmget(key, "definition", "meta")
                for key, reply in zip(keys[start:start + PAGE], pipe.execute(raise_on_error=False), strict=True):
                    if isinstance(reply, Exception):
                        self.warnings.append(f"skipped {key!r}: {reply}")
                        continue
                    entry = self._entry(key, reply[0], reply[1], now)
                    if entry is not None:
                        out.append(entry)
        if lock is not None and lock > 0:
            self.warnings.append(f"{self.prefix}:lock is held ({lock / 1000:.0f} s left): a RedBeat beat is running")
        else:
            self.warnings.append(f"{self.prefix}:lock is not held: no RedBeat beat is running")
        return sorted(out, key=lambda e: e.name)

    def _entry(self, key: str, definition: bytes | None, meta: bytes | None, now: dt.datetime) -> BeatEntry | None:
        d = _load(definition, "definition", key)
        if d is None:
            self.warnings.append(f"{key!r} is in the schedule but has no definition (a deleted entry)")
            return None
        if not isinstance(d, dict):
            raise DataError(f"{key}: the definition is not a JSON object (not a RedBeat entry)")
        m = _load(meta, "meta", key) or {}
        last = _datetime(m["last_run_at"]) if isinstance(m, dict) and isinstance(m.get("last_run_at"), dict) else None
        count = m.get("total_run_count") if isinstance(m, dict) else None
        name = str(d.get("name") or key[len(self.prefix):])
        return make_entry(name, d.get("task"), schedule_of(d.get("schedule")), args=d.get("args"),
                          kwargs=d.get("kwargs"), options=d.get("options"), enabled=d.get("enabled", True) is not False,
                          last_run_at=last, total_run_count=count, tz=self.timezone, store=self.kind, now=now,
                          due_now_if_never_run=True)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Rewrite ``enabled`` in the entry's definition (the rest of its JSON as it was)."""
        key = self.prefix + name
        with redis_errors(self.url, "RedBeat's Redis"):
            raw = self.client.hget(key, "definition")
            if raw is None:
                raise NotFound(f"no RedBeat entry {name!r} (no hash {key!r} with a definition)")
            d = _load(raw, "definition", key)
            if not isinstance(d, dict):
                raise DataError(f"{key}: the definition is not a JSON object")
            d["enabled"] = enabled
            self.client.hset(key, "definition", json.dumps(d))
