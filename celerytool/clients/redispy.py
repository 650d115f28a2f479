"""Open a redis-py connection from a URL; its errors go through ``redis_errors``.

Used by the Redis broker adapter and the Redis result backend alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from celerytool.clients.redis_errors import connection_error, reply_error
from celerytool.errors import BrokerUnavailable
from celerytool.urls import BrokerURL

if TYPE_CHECKING:  # redis-py loads its asyncio stack: only where a command needs it
    import socket
    import ssl

    from redis import Redis
    from redis.connection import AbstractConnection, SSLConnection

# redis-py strips the code from an error reply; older releases keep no ``status_code``
_CLASS_CODES = {"ReadOnlyError": "READONLY", "OutOfMemoryError": "OOM", "BusyLoadingError": "LOADING",
                "NoPermissionError": "NOPERM", "MasterDownError": "MASTERDOWN"}


def connect(url: BrokerURL, *, connect_timeout: float = 5.0, socket_timeout: float | None = None) -> Redis:
    """A redis.Redis for ``url``; nothing is sent until the first command.

    No ``decode_responses``: replies are bytes, though redis-py types them ``bytes | str``.

    Each new connection must answer a PING (after AUTH / SELECT) within
    ``connect_timeout``: a server that accepts and never answers is
    unreachable after that long.  Every command is chunked, so a later reply
    slower than ``socket_timeout`` (default: twice the connect timeout, at
    least 10 s) means a dead peer.
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
        "socket_timeout": connect_timeout,  # until the handshake has answered
        "redis_connect_func": _handshake(socket_timeout),
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if url.is_sentinel:
        from celerytool.clients.resp import RespClient
        from celerytool.clients.sentinel import redis_client

        return redis_client(url, kwargs, RespClient)
    if url.socket_path:
        return redis.Redis(unix_socket_path=url.socket_path, **kwargs)
    from celerytool.clients.tls import tls_settings

    tls = tls_settings(url)
    if tls is not None:  # our one TLS set-up (clients/tls.py), server_hostname included
        pool = redis.ConnectionPool(connection_class=tls_connection_class(), host=url.host,
                                    port=url.port or 6379, **kwargs, **tls_connection_kwargs(url))
        return redis.Redis(connection_pool=pool)
    return redis.Redis(host=url.host, port=url.port or 6379, **kwargs)


def pipelined(client: Redis, commands: Sequence[tuple[str | bytes, ...]]) -> list[Any]:
    """Send ``commands`` in one round trip and read every reply, as a redis-py pipeline does
    (no transaction; the first error reply is raised once all are read).

    The commands go out as one buffer of RESP (``resp``): redis-py's pipeline checks and
    encodes each argument in Python first, and hiredis's packer slows down on commands of
    thousands of long arguments (an LPUSH of a batch of messages), both costing more than
    the send.  Connections never retry (``connect``), so a lost connection raises, as before.
    """
    from redis.exceptions import ResponseError

    pool = client.connection_pool
    conn = pool.get_connection()
    error: ResponseError | None = None
    replies: list[Any] = []
    try:
        conn.send_packed_command([resp(commands)], check_health=False)
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                error = error or exc
                replies.append(exc)
    except BaseException:
        conn.disconnect()  # replies may be left unread: the connection cannot be used again
        raise
    finally:
        pool.release(conn)
    if error is not None:
        raise error
    return replies


def resp(commands: Iterable[tuple[str | bytes, ...]]) -> bytes:
    """The commands as the Redis protocol writes them: ``*<count>``, then ``$<length>`` and
    the bytes of each argument (text as UTF-8, as redis-py encodes it)."""
    out: list[bytes] = []
    add = out.append
    for command in commands:
        add(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg.encode() if arg.__class__ is str else arg
            add(b"$%d\r\n" % len(data))
            add(data)  # type: ignore[arg-type]
            add(b"\r\n")
    return b"".join(out)


def tls_connection_kwargs(url: BrokerURL) -> dict[str, Any]:
    """What ``tls_connection_class()`` takes for ``url`` (a TLS URL): the SSLContext and the
    name to verify.  Bad options are a usage error here, before any connection."""
    from celerytool.clients.tls import ssl_context, tls_settings

    tls = tls_settings(url)
    assert tls is not None
    return {"tls_context": ssl_context(tls, url), "tls_server_hostname": tls.server_hostname}


def tls_connection_class() -> type[SSLConnection]:
    """redis-py's SSLConnection wrapping its socket with our SSLContext and verifying
    ``server_hostname`` (redis-py verifies the host it connects to, and knows no other name).
    Also kombu's, for the live commands (see control/session.py)."""
    global _TLS_CLASS
    if _TLS_CLASS is None:
        from redis.connection import SSLConnection

        class TLSConnection(SSLConnection):
            def __init__(self, *, tls_context: ssl.SSLContext, tls_server_hostname: str | None,
                         **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.tls_context = tls_context
                self.tls_server_hostname = tls_server_hostname

            def _wrap_socket_with_ssl(self, sock: socket.socket) -> ssl.SSLSocket:
                return self.tls_context.wrap_socket(sock, server_hostname=self.tls_server_hostname or self.host)

        _TLS_CLASS = TLSConnection
    return _TLS_CLASS


_TLS_CLASS: type[SSLConnection] | None = None


def _handshake(reply_timeout: float) -> Callable[[AbstractConnection], None]:
    """redis-py's on-connect step, then a PING, under the connect timeout; then the reply timeout."""
    def on_connect(conn: AbstractConnection) -> None:
        conn.on_connect()
        conn.send_command("PING", check_health=False)
        conn.read_response()
        conn.socket_timeout = reply_timeout
        conn.update_current_socket_timeout(reply_timeout)

    return on_connect


def _reply_text(exc: Exception) -> str:
    code = getattr(exc, "status_code", None) or _CLASS_CODES.get(type(exc).__name__)
    text = str(exc)
    return f"{code} {text}" if code and not text.startswith(code) else text


@contextlib.contextmanager
def redis_errors(url: BrokerURL, what: str = "Redis") -> Iterator[None]:
    """redis-py exceptions -> one-line CeleryToolErrors (see ``redis_errors``)."""
    import redis.exceptions as rex

    try:
        yield
    except (rex.ResponseError, rex.BusyLoadingError, rex.AuthenticationError) as exc:
        raise reply_error(url, what, _reply_text(exc)) from None
    except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
        raise connection_error(url, what, exc) from None
    except rex.RedisError as exc:  # e.g. InvalidResponse: something else answers there
        raise BrokerUnavailable(url.scrub(f"{what} at {url.redacted()} did not answer like Redis: {exc}")) from None


def glob_escape(text: str) -> str:
    """``text`` matched literally in a SCAN/KEYS pattern (a key prefix may hold ``*?[]\\``)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
