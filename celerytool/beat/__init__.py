"""Periodic tasks: the schedule a beat scheduler keeps, read (and on some stores changed)
without importing the user's app.

Stores: RedBeat (Redis keys, ``redbeat.py``), django-celery-beat (SQL tables, ``django.py``),
and the default scheduler's ``celerybeat-schedule`` file (a shelve of pickles, read with the
inert unpickler, ``shelf.py``). ``schedules.py`` turns each store's schedule description into
words and a next due time with Celery's own schedule classes. ``open_store`` picks the store
from ``--store``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from celerytool.errors import UsageError

if TYPE_CHECKING:
    import datetime as dt

    from celerytool.codecs.limits import Limits
    from celerytool.model import BeatEntry


class BeatStore(Protocol):
    """What every store offers: ``redbeat.RedBeatStore``, ``django.DjangoBeatStore``,
    ``shelf.ShelveStore``."""

    kind: str
    warnings: list[str]

    def describe(self) -> str: ...

    def entries(self, now: dt.datetime | None = None) -> Iterable[BeatEntry]: ...

    def set_enabled(self, name: str, enabled: bool) -> None: ...

    def close(self) -> None: ...


def open_store(spec: str, *, connect_timeout: float = 5.0, redbeat_prefix: str = "redbeat:",
               limits: Limits | Callable[[], Limits] | None = None, timezone: str | None = None) -> BeatStore:
    """A store for ``spec``: ``redis[s]://`` (RedBeat), ``django-db+URL`` or ``db+URL``
    (django-celery-beat's tables), or a path (the default scheduler's file). ``limits``: the
    inert unpickler's, for the file; or a function that gives them, asked only for a file."""
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme in ("redis", "rediss", "sentinel"):
        from celerytool.beat.redbeat import RedBeatStore
        from celerytool.urls import parse_url

        return RedBeatStore(parse_url(spec), redbeat_prefix, connect_timeout, timezone)
    if scheme.startswith(("django-db+", "db+")):
        from celerytool.beat.django import DjangoBeatStore
        from celerytool.urls import parse_url

        url = spec.split("+", 1)[1] if scheme.startswith("django-db+") else spec
        return DjangoBeatStore(parse_url(url if url.startswith("db+") else "db+" + url), connect_timeout)
    if scheme:
        raise UsageError(f"--store takes a redis:// URL (RedBeat), django-db+URL / db+URL "
                         f"(django-celery-beat) or the path of a celerybeat-schedule file, not {scheme}://")
    from celerytool.beat.shelf import ShelveStore
    from celerytool.codecs.limits import DEFAULT_LIMITS

    return ShelveStore(os.path.expanduser(spec), (limits() if callable(limits) else limits) or DEFAULT_LIMITS)
