"""Result backends, one store per kind that reads and changes; ``open_backend`` picks one
from the URL.

Every store offers the same reads (``query.ResultBackend``): ``get_many(ids)``, ``get(id)``,
``wait(ids, timeout, on_change)``, ``select(ResultQuery)`` and ``close()``, all returning
``TaskResult`` values, so ``result`` / ``results`` behave the same on Redis, Celery's database
backend and django-celery-results; and the same changes (``criteria.ResultChanges``:
``forget``, ``expire``), written in redis_changes.py and sql_changes.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import UsageError
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from celerytool.backends.criteria import ResultStore

TABLE_ROLES = ("task", "group")


def parse_table_names(text: str) -> dict[str, str]:
    """``task=T,group=G`` (Celery's ``database_table_names``) -> {"task": T, "group": G}."""
    names: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        role, sep, name = item.partition("=")
        role, name = role.strip().lower(), name.strip()
        if not sep or role not in TABLE_ROLES or not name:
            raise UsageError(f"expected task=TABLE,group=TABLE, not {text!r}")
        names[role] = name
    return names


def preload(url: BrokerURL) -> None:
    """Import the store of ``url``'s kind and its client library now, without connecting (before
    a fork: the reading process finds them imported; ``retry``)."""
    if url.kind == "redis":
        import redis  # noqa: F401

        import celerytool.backends.redis  # noqa: F401
    elif url.kind in ("sql", "django"):
        import sqlalchemy  # noqa: F401

        import celerytool.backends.sql  # noqa: F401


def open_backend(url: BrokerURL, *, keyprefix: str = "", limits: Limits = DEFAULT_LIMITS,
                 connect_timeout: float = 5.0, table_names: dict[str, str] | None = None,
                 readonly: bool = True) -> ResultStore:
    """The store of ``url``'s kind, which reads (``query.ResultBackend``) and changes
    (``criteria.ResultChanges``: forget, expire); ``readonly`` opens a SQLite file read-only."""
    if url.kind == "redis":
        from celerytool.backends.redis import RedisResultBackend

        return RedisResultBackend(url, keyprefix=keyprefix, limits=limits, connect_timeout=connect_timeout)
    if url.kind in ("sql", "django"):
        from celerytool.backends.sql import SqlResultBackend

        if url.kind == "django":
            from celerytool.backends.django import DJANGO_LAYOUT as layout
        else:
            from celerytool.backends.celerydb import celery_layout

            layout = celery_layout(table_names or {})
        return SqlResultBackend(url, layout, limits=limits, connect_timeout=connect_timeout, readonly=readonly)
    if url.kind == "rpc":
        raise UsageError("rpc:// results are messages sent back to the process that sent the task; "
                         "they cannot be read after the fact (use a Redis or database result backend)")
    raise UsageError(f"{url.scheme}:// is not a supported result backend "
                     "(use redis://, rediss://, db+postgresql://, db+mysql://, db+sqlite:/// or django-db+...)")


def backend_for_broker(broker: BrokerURL) -> BrokerURL | None:
    """The result backend a broker URL doubles as when none is given (Redis: the same URL)."""
    return broker if broker.kind == "redis" else None


__all__ = ["backend_for_broker", "open_backend", "parse_table_names"]
