"""One place that opens a pika connection from an amqp:// URL and translates its errors.

Failover URLs (``amqp://h1;amqp://h2``) are tried in order; TLS options come
from the query string; every timeout is short so that an unreachable broker
is reported (exit 69) within a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from celerytool.errors import BrokerUnavailable, CeleryToolError, NotFound, UsageError
from celerytool.urls import BrokerURL


# pika ships its annotations without py.typed, so mypy sees none: what celerytool uses of its
# blocking connection and channel, written out.  Frames and properties stay Any (pika's
# ``Method``, ``Basic.Deliver`` / ``GetOk``, ``BasicProperties``).
class Channel(Protocol):
    """pika's ``BlockingChannel``."""

    @property
    def is_open(self) -> bool: ...

    _impl: Any  # pika's ``Channel``: what the blocking channel does not offer (brokers/amqp/consume.py)
    _pending_events: Any  # deliveries the blocking channel holds for its consumers
    _consumer_infos: dict[str, Any]

    def close(self, reply_code: int = 0, reply_text: str = "Normal shutdown") -> None: ...

    def queue_declare(self, queue: str, passive: bool = False, durable: bool = False,
                      exclusive: bool = False, auto_delete: bool = False,
                      arguments: dict[str, Any] | None = None) -> Any: ...

    def queue_delete(self, queue: str, if_unused: bool = False, if_empty: bool = False) -> Any: ...

    def queue_purge(self, queue: str) -> Any: ...

    def basic_qos(self, prefetch_size: int = 0, prefetch_count: int = 0, global_qos: bool = False) -> None: ...

    def basic_consume(self, queue: str, on_message_callback: Callable[[Any, Any, Any, bytes], None],
                      auto_ack: bool = False, exclusive: bool = False, consumer_tag: str | None = None,
                      arguments: dict[str, Any] | None = None) -> str: ...

    def basic_get(self, queue: str, auto_ack: bool = False) -> tuple[Any, Any, bytes | None]: ...

    def basic_nack(self, delivery_tag: int = 0, multiple: bool = False, requeue: bool = True) -> None: ...

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, properties: Any = None,
                      mandatory: bool = False) -> None: ...

    def confirm_delivery(self) -> None: ...


class Connection(Protocol):
    """pika's ``BlockingConnection``."""

    @property
    def is_open(self) -> bool: ...

    _impl: Any  # pika's connection, for its server properties (``server_version``)

    def channel(self, channel_number: int | None = None) -> Channel: ...

    def close(self, reply_code: int = 200, reply_text: str = "Normal shutdown") -> None: ...

    def process_data_events(self, time_limit: float | None = 0) -> None: ...

    def _flush_output(self, *waiters: Callable[[], bool]) -> None: ...


def _q(url: BrokerURL, *names: str) -> str | None:
    query = {k.lower(): v for k, v in url.query.items()}
    for name in names:
        if name in query:
            return query[name]
    return None


def _seconds(url: BrokerURL, name: str, default: float | None) -> float | None:
    text = _q(url, name)
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} in {url.redacted()} is not a number of seconds") from None


def ssl_options(url: BrokerURL) -> Any:
    """pika SSLOptions from the URL's TLS options (``clients.tls``), or None for plain AMQP."""
    from celerytool.clients.tls import ssl_context, tls_settings

    settings = tls_settings(url)
    if settings is None:
        return None
    import pika

    return pika.SSLOptions(ssl_context(settings, url), settings.server_hostname)


def parameters(url: BrokerURL, connect_timeout: float) -> Any:
    """pika ConnectionParameters for one host of ``url``: one attempt, short timeouts."""
    import pika

    timeout = _seconds(url, "connect_timeout", connect_timeout) or connect_timeout
    heartbeat = _seconds(url, "heartbeat", None)
    try:
        return pika.ConnectionParameters(
            host=url.host,
            port=url.port or (5671 if url.tls else 5672),
            virtual_host=url.vhost,
            credentials=pika.PlainCredentials(url.username or "guest", url.password or ""),
            connection_attempts=1,
            retry_delay=0,
            socket_timeout=timeout,
            stack_timeout=timeout,
            blocked_connection_timeout=max(timeout, 10.0),
            heartbeat=None if heartbeat is None else int(heartbeat),
            ssl_options=ssl_options(url),
            client_properties={"connection_name": "celerytool"},
        )
    except (TypeError, ValueError, OSError, ssl.SSLError) as exc:
        raise UsageError(url.scrub(f"bad connection options in {url.redacted()}: {exc}")) from None


def describe(exc: BaseException) -> str:
    """A one-line reason from a pika exception (they nest their causes in args)."""
    import pika.exceptions as pex
    from pika.adapters.utils import connection_workflow as cw

    if isinstance(exc, cw.AMQPConnectorStackTimeout):
        return "timed out waiting for the AMQP handshake"
    if isinstance(exc, cw.AMQPConnectorPhaseErrorBase) and exc.exception is not None:
        return describe(exc.exception)
    if isinstance(exc, (pex.ConnectionClosed, pex.ChannelClosed)):
        return f"({exc.reply_code}) {exc.reply_text}"
    if isinstance(exc, pex.AMQPConnectionError) and exc.args:
        inner = exc.args[0]
        if isinstance(inner, BaseException):
            return describe(inner)
        return str(inner).removeprefix("ConnectionClosedByBroker: ")
    return str(exc) or type(exc).__name__


def connect(url: BrokerURL, *, connect_timeout: float = 5.0) -> tuple[Connection, BrokerURL]:
    """Open a BlockingConnection to the first host that answers; return it and its URL."""
    import pika
    import pika.exceptions as pex
    from pika.adapters.utils import connection_workflow as cw

    install_table_codecs()
    # pika logs connection failures with tracebacks; we report them as one line instead
    pika_log = logging.getLogger("pika")
    if not pika_log.handlers:
        pika_log.addHandler(logging.NullHandler())
    failures: list[str] = []
    auth_failed = False
    for one in (url.without_alternates(), *url.alternates):
        where = one.redacted()
        try:
            return pika.BlockingConnection(parameters(one, connect_timeout)), one
        except (pex.ProbableAuthenticationError, pex.AuthenticationError) as exc:
            auth_failed = True
            failures.append(f"authentication failed for user {one.username!r} at {where}: {describe(exc)}")
        except pex.ProbableAccessDeniedError as exc:
            failures.append(f"vhost {one.vhost!r} at {where} is missing or not permitted "
                            f"for user {one.username!r}: {describe(exc)}")
        except (pex.AMQPError, cw.AMQPConnectorException, cw.AMQPConnectionWorkflowFailed,
                OSError, ssl.SSLError) as exc:
            failures.append(f"cannot reach RabbitMQ at {where}: {describe(exc)}")
    text = "; ".join(failures)
    if auth_failed and len(failures) == 1:
        text += " (check the user and password in the URL)"
    raise BrokerUnavailable(url.scrub(text))


def probe(url: BrokerURL, *, connect_timeout: float = 5.0) -> BrokerURL:
    """BrokerUnavailable unless an AMQP server answers on a host of ``url`` (without logging in);
    the first host of a failover list that answers.

    The management API answering says nothing about the broker's own port: a
    listing must not report "no queues" for a broker nobody can reach.  One
    protocol header and the first byte of the server's answer (after the TLS
    handshake on amqps://), with neither pika (whose import costs more than a
    listing) nor a login.
    """
    from celerytool.clients.tls import ssl_context, tls_settings

    failures: list[str] = []
    for one in (url.without_alternates(), *url.alternates):
        timeout = _seconds(one, "connect_timeout", connect_timeout) or connect_timeout
        tls = tls_settings(one)
        try:
            with socket.create_connection((one.host, one.port or (5671 if one.tls else 5672)),
                                          timeout=timeout) as raw:
                sock = raw if tls is None else \
                    ssl_context(tls, one).wrap_socket(raw, server_hostname=tls.server_hostname)
                sock.sendall(b"AMQP\x00\x00\x09\x01")
                if sock.recv(1):
                    return one
                reason = "the connection was closed without an answer"
        except TimeoutError:
            reason = "timed out waiting for the AMQP handshake"
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        failures.append(f"cannot reach RabbitMQ at {one.redacted()}: {reason}")
    raise BrokerUnavailable(url.scrub("; ".join(failures)))


@contextlib.contextmanager
def amqp_errors(url: BrokerURL, doing: str = "") -> Iterator[None]:
    """Turn pika exceptions raised after connecting into one-line CeleryToolErrors."""
    import pika.exceptions as pex

    during = f" while {doing}" if doing else ""
    try:
        yield
    except pex.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            raise NotFound(url.scrub(f"{exc.reply_text} ({url.redacted()})")) from None
        if exc.reply_code == 403:
            raise BrokerUnavailable(url.scrub(f"RabbitMQ refused{during}: {exc.reply_text}")) from None
        raise CeleryToolError(url.scrub(f"RabbitMQ closed the channel{during}: {describe(exc)}")) from None
    except (pex.AMQPConnectionError, pex.AMQPChannelError, OSError) as exc:
        raise BrokerUnavailable(url.scrub(
            f"connection to RabbitMQ at {url.redacted()} lost{during}: {describe(exc)}")) from None


def install_table_codecs() -> None:
    """Make pika's header-table codec agree with py-amqp (what Celery uses) on floats.

    py-amqp writes floats as AMQP doubles ('d') and tuples as arrays; pika 1.x
    refuses to encode either and decodes 'd' and 'f' through ``int()``, so
    Celery's ``timelimit: [30.5, null]`` would read as 30.  This adds exactly
    those cases to ``pika.data`` and leaves every other type to pika.
    """
    import pika.data

    if getattr(pika.data.encode_value, "celerytool", False):
        return
    encode_original = pika.data.encode_value
    decode_original = pika.data.decode_value

    def encode_value(pieces: list[bytes], value: Any) -> int:
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        if isinstance(value, tuple):
            value = list(value)
        return encode_original(pieces, value)

    def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
        kind = encoded[offset]
        if kind == 0x64:  # 'd'
            return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
        if kind == 0x66:  # 'f'
            return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
        return decode_original(encoded, offset)

    encode_value.celerytool = True  # type: ignore[attr-defined]
    pika.data.encode_value = encode_value
    pika.data.decode_value = decode_value


def server_version(connection: Connection) -> tuple[int, ...]:
    """The broker's version from the connection's server properties (``4.0.5`` -> (4, 0, 5)); () unknown."""
    props = getattr(getattr(connection, "_impl", None), "server_properties", None) or {}
    raw = props.get("version") or props.get(b"version") or ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    out: list[int] = []
    for part in text.split("+")[0].split("-")[0].split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)
