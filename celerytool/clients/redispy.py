"""One place that opens a Redis connection from a URL and translates its errors.

Used by the Redis broker adapter and the Redis result backend alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celerytool.errors import BrokerUnavailable, DataError
from celerytool.urls import BrokerURL

_CERT_REQS = {
    "cert_none": "none",
    "none": "none",
    "cert_optional": "optional",
    "optional": "optional",
    "cert_required": "required",
    "required": "required",
}


def connect(url: BrokerURL, *, connect_timeout: float = 5.0, socket_timeout: float | None = None) -> Any:
    """A redis.Redis for ``url``; nothing is sent until the first command.

    Every command is chunked, so a reply slower than ``socket_timeout``
    (default: twice the connect timeout, at least 10 s) means a dead peer.
    """
    if socket_timeout is None:
        socket_timeout = max(10.0, 2 * connect_timeout)
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kwargs: dict[str, Any] = {
        "db": url.db,
        "username": url.username or None,
        "password": url.password or None,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if url.is_sentinel:
        from celerytool.clients.sentinel import redis_client

        return redis_client(url, kwargs)
    if url.socket_path:
        return redis.Redis(unix_socket_path=url.socket_path, **kwargs)
    q = {k.lower(): v for k, v in url.query.items()}
    if url.tls:
        kwargs["ssl"] = True
        reqs = q.get("ssl_cert_reqs")
        if reqs:
            kwargs["ssl_cert_reqs"] = _CERT_REQS.get(reqs.lower(), reqs.lower())
        for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"):
            if key in q:
                kwargs[key] = q[key] if key != "ssl_check_hostname" else q[key].lower() in {"1", "true", "yes"}
    return redis.Redis(host=url.host, port=url.port or 6379, **kwargs)


@contextlib.contextmanager
def redis_errors(url: BrokerURL, what: str = "Redis") -> Iterator[None]:
    """Turn redis-py exceptions into one-line CeleryToolErrors (passwords masked)."""
    import redis.exceptions as rex

    where = f"{what} at {url.redacted()}"
    try:
        yield
    except rex.AuthenticationError as exc:
        raise BrokerUnavailable(url.scrub(f"authentication failed for {where}: {exc}")) from None
    except rex.ResponseError as exc:
        text = str(exc)
        if text.startswith("WRONGTYPE"):
            raise DataError(url.scrub(f"{where}: a key has the wrong type for this operation ({text})")) from None
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            raise BrokerUnavailable(url.scrub(f"{where} refused us: {text}")) from None
        raise
    except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise BrokerUnavailable(url.scrub(f"cannot reach {where}: {reason}")) from None
    except rex.RedisError as exc:  # e.g. InvalidResponse: something else answers there
        raise BrokerUnavailable(url.scrub(f"{where} did not answer like Redis: {exc}")) from None
