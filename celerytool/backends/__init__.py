"""Result-backend readers; ``open_backend`` picks one from the URL (Redis for now)."""

from __future__ import annotations

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import UsageError
from celerytool.urls import BrokerURL


def open_backend(url: BrokerURL, *, keyprefix: str = "", limits: Limits = DEFAULT_LIMITS,
                 connect_timeout: float = 5.0):
    if url.kind == "redis":
        from celerytool.backends.redis import RedisResultBackend

        return RedisResultBackend(url, keyprefix=keyprefix, limits=limits, connect_timeout=connect_timeout)
    if url.kind == "rpc":
        raise UsageError("rpc:// results are messages sent back to the process that sent the task; "
                         "they cannot be read after the fact (use a Redis result backend)")
    raise UsageError(f"{url.scheme}:// is not a supported result backend (use redis:// or rediss://)")


def backend_for_broker(broker: BrokerURL) -> BrokerURL | None:
    """The result backend a broker URL doubles as when none is given (Redis: the same URL)."""
    return broker if broker.kind == "redis" else None


__all__ = ["backend_for_broker", "open_backend"]
