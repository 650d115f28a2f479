"""Redis Sentinel: the one place that turns a ``sentinel://`` URL into the current master.

A URL is written as Celery users write it (kombu's ``SentinelChannel``, Celery's
``SentinelBackend``): ``sentinel://:pw@h1:26379/0;sentinel://h2:26379/0`` lists the
sentinels; the password and database of the first piece are the *master's*;
``master_name`` (Celery's transport option) names the master; the sentinels'
own password is Celery's ``sentinel_kwargs={"password": ...}``.

- The light RESP client asks ``SENTINEL get-master-addr-by-name`` (``master_url``).
- redis-py gets ``redis.sentinel.Sentinel(...).master_for(...)``, whose connections
  ask the sentinels again each time they (re)connect (``redis_client``).
- ``confirm_replicated`` fences writes: Redis replication is asynchronous and a
  demoted master keeps accepting writes for seconds after a failover, writes
  the new master never sees.  After each batch of writes the master must still
  be a master and, when it has had a replica, a replica must acknowledge them
  (``WAIT``); otherwise the batch counts as not done (BrokerUnavailable, exit 69,
  or a retry on the new master).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from celerytool.errors import BrokerUnavailable, NotFound, UsageError
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from redis import Redis

_T = TypeVar("_T")


class _Asker(Protocol):
    """One connection to a sentinel (``clients.resp.RespClient``)."""

    def execute(self, *args: Any) -> Any: ...
    def close(self) -> None: ...


class AskerClass(Protocol):
    """The light RESP client's class, passed in because it also calls back here to resolve
    sentinel:// URLs."""

    @property
    def ReplyError(self) -> type[Exception]: ...  # the class attribute
    def __call__(self, url: BrokerURL, *, connect_timeout: float = ...,
                 socket_timeout: float | None = ...) -> _Asker: ...


class SentinelsSilent(BrokerUnavailable):
    """No sentinel answered at all (refused, timed out): not a failover to wait out."""


def sentinels(url: BrokerURL) -> list[tuple[str, int]]:
    return [(u.host, u.port or 26379) for u in (url, *url.alternates)]


def require_name(url: BrokerURL) -> str:
    """The master's name; UsageError (exit 2) when the URL has none, or asks for TLS."""
    return _require_name(url)


def _require_name(url: BrokerURL) -> str:
    if url.tls:
        raise UsageError(f"{url.redacted()}: TLS through Redis Sentinel is not supported yet")
    if not url.master_name:
        raise UsageError(f"{url.redacted()}: a sentinel:// URL needs the master's name: "
                         "--master-name NAME, ?master_name=NAME or master_name in the profile")
    return url.master_name


def master_address(url: BrokerURL, client_class: AskerClass, connect_timeout: float = 5.0) -> tuple[str, int]:
    """(host, port) of the master, from the first sentinel that knows it.

    ``client_class`` is the light RESP client (``clients.resp.RespClient``), passed in
    because it also calls back here to resolve sentinel:// URLs.
    """
    return _ask(url, client_class, connect_timeout, "get-master-addr-by-name", _address)


def _address(reply: object) -> tuple[str, int]:
    """``[host, port]`` as a sentinel answers; ValueError for anything else."""
    if not isinstance(reply, list) or len(reply) != 2 or not all(isinstance(x, bytes) for x in reply):
        raise ValueError(f"not [host, port] but {_shown(reply)}")
    host, port_text = reply[0].decode("utf-8", "replace"), reply[1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536 or not host or len(host) > 255:
        raise ValueError(f"not a host and port: {_shown(reply)}")
    return host, int(port_text)


def _shown(reply: object) -> str:
    return ascii(reply)[:100]  # escaped: what a sentinel says is shown, never run by the terminal


def master_identity(url: BrokerURL, client_class: AskerClass, connect_timeout: float = 5.0) -> tuple[str, int]:
    """(run id, port) of the server the sentinels hold to be the master now; the run id is
    empty until a sentinel has polled a newly promoted master."""
    return _ask(url, client_class, connect_timeout, "master", _identity)


def _identity(reply: object) -> tuple[str, int]:
    if not isinstance(reply, list):
        raise ValueError(f"not a list of fields but {_shown(reply)}")
    fields = dict(zip(reply[::2], reply[1::2], strict=False))
    port = fields.get(b"port", b"0")
    if not isinstance(port, bytes) or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"port {_shown(port)}")
    run_id = fields.get(b"runid", b"")
    return (run_id.decode("utf-8", "replace") if isinstance(run_id, bytes) else ""), int(port)


def _ask(url: BrokerURL, client_class: AskerClass, connect_timeout: float, what: str,
         read: Callable[[object], _T]) -> _T:
    name = _require_name(url)
    failures: list[str] = []
    answered = False
    for host, port in sentinels(url):
        one = BrokerURL(raw=f"redis://{host}:{port}", scheme="redis", kind="redis", host=host,
                        port=port, password=url.sentinel_password)
        client = client_class(one, connect_timeout=connect_timeout, socket_timeout=connect_timeout)
        try:
            reply = client.execute("SENTINEL", what, name)
        except client_class.ReplyError as exc:
            if "No such master" in str(exc):
                reply = None
            else:
                failures.append(f"{host}:{port}: {exc}")
                continue
        except (OSError, ConnectionError) as exc:
            failures.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        finally:
            client.close()
        answered = True
        if reply:
            try:
                return read(reply)
            except ValueError as exc:  # a broken or hostile sentinel: ask the next one
                failures.append(f"{host}:{port}: a malformed answer ({exc})")
                continue
        failures.append(f"{host}:{port}: no master named {name!r}")
    if failures and all("no master named" in f for f in failures):
        raise NotFound(f"the sentinels of {url.redacted()} know no master named {name!r}")
    error = BrokerUnavailable if answered else SentinelsSilent
    raise error(url.scrub(f"no sentinel of {url.redacted()} named the master "
                          f"{name!r}: {'; '.join(failures)}"))


def master_url(url: BrokerURL, client_class: AskerClass, connect_timeout: float = 5.0) -> BrokerURL:
    """A plain ``redis://`` URL of the current master (same password and database)."""
    host, port = master_address(url, client_class, connect_timeout)
    query = {k: v for k, v in url.query.items() if k not in ("master_name", "sentinel_password")}
    return replace(url, scheme="redis", host=host, port=port, query=query, alternates=())


def redis_client(url: BrokerURL, kwargs: dict[str, Any], client_class: AskerClass) -> Redis:
    """A redis.Redis whose connections go to whichever server the sentinels name master."""
    from redis import Redis
    from redis.sentinel import Sentinel

    name = _require_name(url)
    # asked once here so that a wrong name, password or address is one clear line
    master_address(url, client_class, kwargs.get("socket_connect_timeout") or 5.0)
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": kwargs.get("socket_connect_timeout"),
        "socket_timeout": kwargs.get("socket_connect_timeout"),
    }
    if url.sentinel_password:
        sentinel_kwargs["password"] = url.sentinel_password
    manager = Sentinel(sentinels(url), sentinel_kwargs=sentinel_kwargs)
    return manager.master_for(name, redis_class=Redis, **kwargs)


class WriteFence:
    """Remembers which masters had replicas, so writes to them must be acknowledged."""

    def __init__(self, url: BrokerURL, timeout: float, client_class: AskerClass) -> None:
        self.url = url
        self.timeout = timeout
        self.client_class = client_class  # the RESP client, to ask the sentinels
        self.replicated: set[str] = set()  # master_replid of masters seen with replicas

    def observe(self, client: Redis) -> dict[str, Any]:
        """Note whether the server has replicas; call it before the first write too."""
        info = client.info("replication")
        if info.get("role") == "master" and int(info.get("connected_slaves", 0)) > 0:
            self.replicated.add(str(info.get("master_replid", "")))
        return info

    def confirm(self, client: Redis) -> None:
        """Raise BrokerUnavailable unless the writes just made on ``client`` will survive a failover."""
        info = self.observe(client)
        if info.get("role") != "master":
            self._fail(client, "became a replica (failover under way)")
        if str(info.get("master_replid", "")) in self.replicated:
            acked = int(client.execute_command("WAIT", 1, int(self.timeout * 1000)))
            if acked < 1:
                self._fail(client, f"had no replica confirm the batch within {self.timeout:g} s "
                                   "(failover under way?)")
        else:
            server = client.info("server")
            run_id, port = master_identity(self.url, self.client_class, self.timeout)
            if (run_id and server.get("run_id") != run_id) or \
                    (not run_id and int(server.get("tcp_port", 0)) != port):
                self._fail(client, "is no longer the one the sentinels name (failover under way)")

    def _fail(self, client: Redis, why: str) -> None:
        _drop(client)
        raise BrokerUnavailable(f"the Redis master of {self.url.redacted()} {why}: "
                                "the last batch was not counted")


def _drop(client: Redis) -> None:
    """Close the pooled connections, so the next command asks the sentinels afresh."""
    try:
        client.connection_pool.disconnect()
    except Exception:
        pass
