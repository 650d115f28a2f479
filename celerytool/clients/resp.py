"""A small RESP2 Redis client for the start-up-critical readers (``result``, ``results``,
and the ``queues`` / ``bindings`` listings).

``import redis`` (redis-py 8) loads its whole asyncio stack, 0.1-0.2 s here:
more than everything else ``celerytool result`` does.  The result reader
needs only GET, pipelined GETs, SCAN, MGET and SUBSCRIBE, so it speaks the
protocol itself over a plain (or TLS / unix) socket.  Everything else uses
redis-py through ``clients.redispy``.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from celerytool.clients.redis_errors import connection_error, reply_error
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    import ssl


class ReplyError(Exception):
    """An error reply from the server (``-ERR ...``)."""


class _Incomplete(Exception):
    pass


# what the server sends: simple strings and bulk strings are bytes, nil is None
Reply = bytes | int | ReplyError | list["Reply"] | None


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespClient:
    """Until the server's first reply, every wait is bounded by ``connect_timeout``
    (a server that accepts and never answers is unreachable); after it, by
    ``socket_timeout`` (default: twice the connect timeout, at least 10 s)."""

    ReplyError = ReplyError

    def __init__(self, url: BrokerURL, *, connect_timeout: float = 5.0, socket_timeout: float | None = None) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.socket_timeout = max(10.0, 2 * connect_timeout) if socket_timeout is None else socket_timeout
        self.answered = False
        self.sock: socket.socket | None = None
        self.buf = bytearray()
        self.pos = 0

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> None:
        u = self.url
        if u.is_sentinel:
            from celerytool.clients.sentinel import master_url

            u = master_url(u, RespClient, self.connect_timeout)
        if u.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            sock.connect(u.socket_path)
        else:
            sock = socket.create_connection((u.host, u.port or 6379), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if u.tls:
                sock = self._wrap_tls(sock)
        sock.settimeout(self.connect_timeout)
        self.sock = sock
        self.answered = False
        if u.password:
            self.execute(*(["AUTH", u.username, u.password] if u.username else ["AUTH", u.password]))
        if u.db:
            self.execute("SELECT", u.db)

    def _wrap_tls(self, sock: socket.socket) -> ssl.SSLSocket:
        from celerytool.clients.tls import ssl_context, tls_settings

        settings = tls_settings(self.url)
        assert settings is not None
        return ssl_context(settings, self.url).wrap_socket(sock, server_hostname=settings.server_hostname)

    def _socket(self) -> socket.socket:
        if self.sock is None:
            self._connect()
        assert self.sock is not None
        return self.sock

    def _open(self) -> socket.socket:
        assert self.sock is not None, "not connected"
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    # -- commands -----------------------------------------------------------------------
    def execute(self, *args: Any) -> Any:  # the reply's shape is the command's: the caller knows it
        reply = self.pipeline([args])[0]
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send all commands, then read all replies (errors come back as ReplyError)."""
        sock = self._socket()
        sock.sendall(b"".join(_encode(c) for c in commands))
        replies = [self._read() for _ in commands]
        if not self.answered:
            self.answered = True
            sock.settimeout(self.socket_timeout)
        return replies

    def scan_iter(self, match: str, count: int = 1000, type_: str | None = None) -> Iterator[bytes]:
        cursor = b"0"
        extra = ("TYPE", type_) if type_ else ()
        while True:
            cursor, keys = self.execute("SCAN", cursor, "MATCH", match, "COUNT", count, *extra)
            yield from keys
            if cursor == b"0":
                return

    def subscribe(self, *channels: str) -> None:
        sock = self._socket()
        sock.sendall(_encode(("SUBSCRIBE", *channels)))
        for _ in channels:
            self._read()  # the subscribe confirmations
        if not self.answered:
            self.answered = True
            sock.settimeout(self.socket_timeout)

    def get_message(self, timeout: float) -> tuple[bytes, bytes] | None:
        """The next (channel, data) published to a subscribed channel, or None after ``timeout``."""
        if not self._has_reply():
            ready, _, _ = select.select([self._open()], [], [], max(timeout, 0))
            if not ready and not self._has_reply():
                return None
        reply = self._read()
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            return cast("tuple[bytes, bytes]", (reply[1], reply[2]))  # bulk strings
        return None

    # -- reading ------------------------------------------------------------------------
    def _has_reply(self) -> bool:
        start = self.pos
        try:
            self._parse()
            return True
        except _Incomplete:
            return False
        finally:
            self.pos = start

    def _read(self) -> Reply:
        while True:
            start = self.pos
            try:
                reply = self._parse()
            except _Incomplete:
                self.pos = start
                chunk = self._open().recv(1 << 16)
                if not chunk:
                    raise ConnectionError("connection closed by server") from None
                if self.pos > (1 << 20):  # drop what was consumed
                    del self.buf[:self.pos]
                    self.pos = 0
                self.buf += chunk
                continue
            if self.pos == len(self.buf):
                self.buf.clear()
                self.pos = 0
            return reply

    def _line(self) -> bytes:
        end = self.buf.find(b"\r\n", self.pos)
        if end < 0:
            raise _Incomplete
        line = bytes(self.buf[self.pos:end])
        self.pos = end + 2
        return line

    def _parse(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            if len(self.buf) < self.pos + n + 2:
                raise _Incomplete
            data = bytes(self.buf[self.pos:self.pos + n])
            self.pos += n + 2
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._parse() for _ in range(n)]
        raise ConnectionError(f"unexpected reply from server: {line[:40]!r}")


@contextlib.contextmanager
def resp_errors(url: BrokerURL, what: str) -> Iterator[None]:
    """Socket and server errors -> one-line CeleryToolErrors (see ``redis_errors``)."""
    try:
        yield
    except ReplyError as exc:
        raise reply_error(url, what, str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise connection_error(url, what, exc) from None
