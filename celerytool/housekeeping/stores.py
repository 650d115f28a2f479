"""``open_result_store``: the ``ResultStore`` for a result-backend URL (Redis or a database)."""

from __future__ import annotations

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import UsageError
from celerytool.housekeeping.criteria import ResultStore
from celerytool.urls import BrokerURL


def open_result_store(url: BrokerURL, *, keyprefix: str = "", limits: Limits = DEFAULT_LIMITS,
                      connect_timeout: float = 5.0, table_names: dict[str, str] | None = None) -> ResultStore:
    if url.kind == "redis":
        from celerytool.housekeeping.redis_results import RedisResults

        return RedisResults(url, keyprefix=keyprefix, limits=limits, connect_timeout=connect_timeout)
    if url.kind in ("sql", "django"):
        from celerytool.housekeeping.sql_results import SqlResults

        return SqlResults(url, table_names=table_names, limits=limits, connect_timeout=connect_timeout)
    if url.kind == "rpc":
        raise UsageError("rpc:// results are messages, not stored: there is nothing to forget")
    raise UsageError(f"{url.scheme}:// is not a result backend forget knows (Redis or a database)")
