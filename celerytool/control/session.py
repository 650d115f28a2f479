"""One remote-control session: a bare Celery app, whom to expect, calls, and clean-up.

Celery's ``broadcast`` waits out its whole timeout unless told how many
replies to expect.  ``expected()`` reads that from the broker (Redis: the
workers' own ``celery.pidbox`` bindings; RabbitMQ: the ``*.celery.pidbox``
queues the management API lists), so a call returns as soon as every
expected worker answered.  ``close()`` removes what the session created on
Redis (reply and event lists, their binding rows), also after Ctrl-C.
RabbitMQ deletes our exclusive reply and event queues when the connection
closes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from celerytool.control.replies import ACCEPT
from celerytool.errors import BrokerUnavailable, CeleryToolError
from celerytool.kombu_layout import (
    DEFAULT_PRIORITY_STEPS,
    DEFAULT_SEP,
    PIDBOX_EXCHANGE,
    PIDBOX_SUFFIX,
    REPLY_EXCHANGE,
    binding_key,
)
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from redis import Redis

    from celerytool.control.hygiene import BrokerSettings


@dataclass(frozen=True)
class ControlOptions:
    """The broker options the live commands need (kombu's Redis layout, timeouts, the API)."""

    global_keyprefix: str = ""
    sep: str = DEFAULT_SEP
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    connect_timeout: float = 5.0
    management_url: str | None = None

    @classmethod
    def of(cls, options: BrokerSettings) -> ControlOptions:
        """From any object with these attributes (the CLI passes its BrokerOptions)."""
        return cls(options.global_keyprefix, options.sep, tuple(options.priority_steps),
                   options.connect_timeout, options.management_url)


class ControlSession:
    """Talk to workers through ``app.control``; use as a context manager."""

    def __init__(self, url: BrokerURL, options: ControlOptions) -> None:
        if url.kind not in ("redis", "amqp"):
            from celerytool.errors import UsageError

            raise UsageError(f"{url.scheme}:// is not a broker URL")
        self.url = url
        self.options = options
        self.warnings: list[str] = []
        self._event_queues: list[str] = []
        self._closed = False

    # -- set-up -----------------------------------------------------------------------
    @cached_property
    def app(self) -> Any:
        from celerytool.clients.celery_app import bare_app

        # the connection is made from our URL explicitly (``connection``), never from app.conf,
        # which prefers CELERY_BROKER_URL: see clients/celery_app.py
        app = bare_app(kombu_url(self.url))
        transport: dict[str, Any] = {}
        if self.url.kind == "redis":
            if self.options.global_keyprefix:
                transport["global_keyprefix"] = self.options.global_keyprefix
            transport["priority_steps"] = list(self.options.priority_steps)
            # No visibility-timeout machinery: with it, every poll of this session's consumers runs
            # kombu's sweep, which puts the workers' unacked tasks older than the timeout back on
            # their queues (a duplicate when a worker still holds one): a read must change nothing.
            transport["ack_emulation"] = False
            if self.url.is_sentinel:  # as Celery users configure kombu's sentinel:// transport
                from celerytool.clients.sentinel import require_name

                transport["master_name"] = require_name(self.url)  # none: exit 2, as everywhere
                # the sentinels answer within --connect-timeout too (redis-py waits for good)
                ct = self.options.connect_timeout
                transport["sentinel_kwargs"] = {"socket_timeout": ct, "socket_connect_timeout": ct}
                if self.url.sentinel_password:
                    transport["sentinel_kwargs"]["password"] = self.url.sentinel_password
        app.conf.update(
            accept_content=ACCEPT,
            result_accept_content=ACCEPT,
            task_serializer="json",
            event_serializer="json",
            broker_connection_timeout=self.options.connect_timeout,
            broker_connection_retry=False,
            broker_connection_max_retries=1,
            broker_connection_retry_on_startup=False,
            broker_transport_options=transport,
            broker_heartbeat=0,
            enable_utc=True,
        )
        return app

    @cached_property
    def connection(self) -> Any:
        conn = self.app.connection_for_write(**{"url": kombu_url(self.url), **kombu_database(self.url),
                                                **self.redis_tls(), **self.amqp_tls()})
        if self.url.is_sentinel:  # the master's address first, within --connect-timeout (69)
            from celerytool.clients.resp import RespClient
            from celerytool.clients.sentinel import master_address

            master_address(self.url, RespClient, self.options.connect_timeout)
        if self.url.kind == "redis":
            # our client bounds a TLS handshake by --connect-timeout; kombu's waits for good
            # (rediss:// to a plain Redis)
            from celerytool.clients.redispy import redis_errors

            with redis_errors(self.url, "Redis broker"):
                self.redis.ping()
        with self.errors("connecting"):
            conn.ensure_connection(max_retries=0, timeout=self.options.connect_timeout)
            if self.url.kind == "redis":
                conn.default_channel.client.ping()  # kombu's Redis connects lazily
        return conn

    def redis_tls(self) -> dict[str, Any]:
        """kombu's Redis transport over our one TLS set-up (clients/tls.py): bad options are a
        usage error (2) before kombu sees them, and ``server_hostname`` is verified."""
        if self.url.kind != "redis" or not self.url.tls:
            return {}
        from kombu.transport import redis as kombu_redis

        from celerytool.clients.redispy import tls_connection_class, tls_connection_kwargs
        from celerytool.clients.tls import TLS_QUERY

        tls = tls_connection_kwargs(self.url)
        if self.url.is_sentinel:  # kombu's sentinel transport keeps its own TLS handling
            return {}

        class Channel(kombu_redis.Channel):
            connection_class_ssl = tls_connection_class()

        class Transport(kombu_redis.Transport):
            pass

        Transport.Channel = Channel
        return {"url": kombu_url(self.url, drop=TLS_QUERY), "transport": Transport,
                "ssl": tls}

    def amqp_tls(self) -> dict[str, Any]:
        """py-amqp's TLS options from our one TLS set-up (clients/tls.py), as the URL's query
        gives them to celerytool's other AMQP connections: CA, client certificate, verification
        and the name to verify (kombu gets the URL without its query)."""
        if self.url.kind != "amqp" or not self.url.tls:
            return {}
        from celerytool.clients.tls import ssl_context, tls_settings

        tls = tls_settings(self.url)
        assert tls is not None
        ssl_context(tls, self.url)  # a missing or bad file is a usage error (2) here, as elsewhere
        opts: dict[str, Any] = {"cert_reqs": tls.verify_mode,
                                "server_hostname": tls.server_hostname if tls.check_hostname else None}
        if tls.ca_certs:
            opts["ca_certs"] = tls.ca_certs
        if tls.certfile:
            opts.update(certfile=tls.certfile, keyfile=tls.keyfile)
        return {"ssl": opts}

    @cached_property
    def mailbox(self) -> Any:
        """``app.control``'s mailbox bound once, so every call uses one reply queue."""
        bound = self.app.control.mailbox(self.connection)
        # publish on our own connection, not kombu's process-wide producer pool (which
        # would outlive the session and keep a connection per URL)
        bound.producer_pool = None
        from celerytool.control.replies import install

        # each reply decoded within the body limits, by a deadline; one that cannot be decoded
        # is skipped and said, instead of voiding every other worker's reply
        install(bound, self.warnings)
        return bound

    @cached_property
    def redis(self) -> Redis:
        """Our own redis-py client (not kombu's): expected workers and clean-up."""
        from celerytool.clients.redispy import connect

        return connect(self.url.without_alternates(), connect_timeout=self.options.connect_timeout)

    def rkey(self, key: str) -> str:
        return self.options.global_keyprefix + key

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """kombu / redis / amqp failures as one line, exit 69."""
        try:
            yield
        except CeleryToolError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            from kombu.exceptions import ContentDisallowed, DecodeError

            if isinstance(exc, (ContentDisallowed, DecodeError)):
                raise CeleryToolError(f"a worker reply could not be decoded: {exc}") from None
            reason = str(exc) or type(exc).__name__
            raise BrokerUnavailable(self.url.scrub(
                f"{doing} {self.url.redacted()} failed: {reason}")) from None

    # -- whom to expect ---------------------------------------------------------------
    @cached_property
    def expected(self) -> list[str] | None:
        """Names of the workers bound to the control exchange, or None when unknown."""
        if self.url.kind == "redis":
            from celerytool.clients.redispy import redis_errors

            with redis_errors(self.url, "Redis broker"):
                # bytes: our client decodes no replies (redis-py types them ``bytes | str``)
                rows = cast("set[bytes]", self.redis.smembers(self.rkey(binding_key(PIDBOX_EXCHANGE))))
            sep = self.options.sep.encode("latin-1")
            names = set()
            for row in rows:
                queue = row.split(sep)[-1].decode("utf-8", "replace")
                if queue.endswith(PIDBOX_SUFFIX):
                    names.add(queue[: -len(PIDBOX_SUFFIX)])
            return sorted(names)
        if self.url.kind == "amqp":
            from celerytool.clients.amqp import probe
            from celerytool.clients.management import ManagementAPI, ManagementError

            node = self.url.without_alternates()
            if self.url.alternates and not self.options.management_url:  # the node that answers
                node = probe(self.url, connect_timeout=self.options.connect_timeout)
            api = ManagementAPI.for_broker(node, self.options.management_url, self.options.connect_timeout)
            try:
                queues = api.queues(self.url.vhost)
            except ManagementError as exc:
                self.warnings.append(f"management API at {api} did not answer ({exc}): "
                                     "waiting the whole timeout for replies")
                return None
            return sorted(q["name"][: -len(PIDBOX_SUFFIX)] for q in queues
                          if q.get("name", "").endswith(PIDBOX_SUFFIX)
                          and not q["name"].endswith("." + REPLY_EXCHANGE))
        return None

    # -- calls ------------------------------------------------------------------------
    def call(self, command: str, arguments: dict[str, Any] | None = None,
             destination: list[str] | None = None, timeout: float = 1.0,
             limit: int | None = None) -> dict[str, Any]:
        """``{worker: reply}`` from the workers that answered within ``timeout``.

        Without ``destination`` or ``limit``, the expected workers set the
        limit; with neither known, Celery waits the whole timeout.
        """
        if destination is not None and not destination:
            return {}
        mailbox = self.mailbox  # connect first: an unreachable broker is the error to report
        if limit is None and destination is None and self.expected:
            limit = len(self.expected)
        timeout = max(timeout, 0.01)
        with self.errors(f"{command} on"):
            if destination:  # kombu expects exactly len(destination) replies
                replies = mailbox.call(destination, command, arguments or {}, timeout=timeout)
            else:
                replies = mailbox.multi_call(command, arguments or {}, timeout=timeout, limit=limit)
        out: dict[str, Any] = {}
        for reply in replies or []:
            if isinstance(reply, dict):
                out.update(reply)
        return out

    def cast(self, command: str, arguments: dict[str, Any] | None = None,
             destination: list[str] | None = None) -> None:
        """Send a command without waiting for replies."""
        mailbox = self.mailbox
        with self.errors(f"{command} on"):
            if destination:
                mailbox.cast(destination, command, arguments or {})
            else:
                mailbox.abcast(command, arguments or {})

    def ping(self, timeout: float, wait_for: int | None = None) -> tuple[list[str], float]:
        """Workers answering a ping; with ``wait_for``, retry until that many or ``timeout``.

        Returns the names and the seconds spent.
        """
        start = time.monotonic()
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if wait_for is not None:
                # ask again at least every second: new workers bind as they start
                self.__dict__.pop("expected", None)
            per_call = remaining if wait_for is None else min(max(remaining, 0.01), 1.0)
            names = sorted(self.call("ping", timeout=per_call))
            if wait_for is None or len(names) >= wait_for or time.monotonic() >= deadline - 0.05:
                return names, time.monotonic() - start
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def register_event_queue(self, name: str) -> None:
        self._event_queues.append(name)

    # -- clean-up ---------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _sigint_deferred():
            try:
                if self.url.kind == "redis" and "app" in self.__dict__:
                    self._redis_cleanup()
            finally:
                if "connection" in self.__dict__:
                    with contextlib.suppress(Exception):
                        self.connection.release()
                if "app" in self.__dict__:
                    self.app.close()
                if "redis" in self.__dict__:
                    with contextlib.suppress(Exception):
                        self.redis.close()

    def _redis_cleanup(self) -> None:
        from celerytool.control.hygiene import drop_redis_queue

        targets = []
        if "mailbox" in self.__dict__:
            targets.append((REPLY_EXCHANGE, self.mailbox.reply_queue.name))
        targets += [(self.app.conf.event_exchange, name) for name in self._event_queues]
        try:
            for exchange, queue in targets:
                drop_redis_queue(self.redis, self.options, exchange, queue)
        except Exception as exc:  # the broker went away: say what may be left
            self.warnings.append(f"could not remove {', '.join(q for _, q in targets)}: {exc}")

    def __enter__(self) -> ControlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# kombu hands a URL's query options to Connection() as arguments: one it does not take
# (socket_timeout, db, ...) is a TypeError, an ssl_cert_reqs it does not spell so a KeyError.
# Their values were checked when the URL was parsed (urls.check_redis_query); the session
# passes kombu what it needs itself (the database below, TLS in redis_tls, --connect-timeout),
# except on sentinel://, where kombu's own transport reads the TLS options. The same holds for
# an AMQP URL (py-amqp's Connection takes no connection_attempts, socket_timeout, ...): celerytool's
# own AMQP connections (pika) read what they use of the query; the session passes its timeouts
# itself, and amqps:// TLS as ``amqp_tls`` reads it from the query.
_KOMBU_SENTINEL_QUERY = ("ssl", "ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile",
                         "ssl_check_hostname")


def kombu_url(url: BrokerURL, drop: tuple[str, ...] = ()) -> str:
    """``url`` for kombu's Connection: without the query options kombu cannot take."""
    keep = _KOMBU_SENTINEL_QUERY if url.is_sentinel else ()
    names = {k.lower() for u in (url, *url.alternates) for k in u.query} - set(keep)
    return url.kombu_url(tuple(sorted(names.union(drop))))


def kombu_database(url: BrokerURL) -> dict[str, Any]:
    """The Redis database for kombu, also when the URL names it by ``?db=`` (the URL's path wins)."""
    return {"virtual_host": str(url.db)} if url.kind == "redis" else {}


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C during clean-up waits until the clean-up is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: asked.append(signum))
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if asked:
            raise KeyboardInterrupt
