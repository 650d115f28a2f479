"""RabbitMQ management HTTP API client (standard library only): queues, bindings, exchanges.

AMQP 0-9-1 cannot list anything, so listings come from the management
plugin: one GET per listing for the whole vhost, never one per queue.
Message counts there are the plugin's last statistics sample (every 5 s by
default), not a live reading.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from celerytool.errors import UsageError
from celerytool.urls import BrokerURL, redact_text, userinfo_past_host

if TYPE_CHECKING:
    import urllib.error

DEFAULT_PORT = 15672
QUEUE_COLUMNS = ("name", "type", "arguments", "durable", "auto_delete", "exclusive",
                 "messages_ready", "messages_unacknowledged", "consumers", "leader", "members", "online", "node",
                 "head_message_timestamp")


class ManagementError(Exception):
    """The API could not answer; ``reachable`` is False when it never replied."""

    def __init__(self, message: str, *, reachable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.reachable = reachable
        self.status = status


class ManagementAPI:
    """A tiny client for the endpoints celerytool reads; counts its requests in ``calls``."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 5.0) -> None:
        raw = base_url if "://" in base_url else f"http://{base_url}"
        parts = urlsplit(raw)
        hint = "(percent-encode '@', ':', '/', '?' and '#' in a user name or password, e.g. %40 for '@')"
        if userinfo_past_host(raw, parts.netloc):  # a password's '/' ended the host early
            raise UsageError(f"malformed management URL {redact_text(raw)!r}: an '@' after the host {hint}")
        try:
            port = parts.port
        except ValueError:  # its text can hold part of a password: never shown
            raise UsageError(f"malformed management URL {redact_text(raw)!r}: the port is not a number "
                             f"from 0 to 65535 {hint}") from None
        if parts.username is not None:
            username = parts.username
            password = parts.password or ""
        netloc = parts.hostname or "localhost"
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if port:
            netloc += f":{port}"
        path = parts.path.rstrip("/")
        if path.endswith("/api"):
            path = path[: -len("/api")]
        self.base = urlunsplit((parts.scheme or "http", netloc, path, "", ""))
        self.username = username
        self.password = password
        self.timeout = timeout
        self.calls = 0

    @classmethod
    def for_broker(cls, url: BrokerURL, override: str | None, timeout: float) -> ManagementAPI:
        """The API given by ``--management-url``, else http://<broker host>:<port>.

        RabbitMQ's convention pairs AMQP 5672 (and TLS 5671) with the API on 15672, and a
        node on another AMQP port (5673, a local cluster's 5674...) with that port + 10000:
        15672 there would be another node's API, answering for the wrong broker.
        """
        port = DEFAULT_PORT if url.port in (None, 5671, 5672) else url.port + 10000
        base = override or f"http://{url.host}:{port}"
        return cls(base, url.username or "guest", url.password or "", timeout)

    def __str__(self) -> str:
        return self.base

    # -- HTTP -------------------------------------------------------------------------
    def request(self, method: str, path: str, params: dict[str, str] | None = None,
                body: Any = None) -> Any:
        import urllib.error
        import urllib.request

        url = f"{self.base}/api{path}" + (f"?{urlencode(params)}" if params else "")
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            reason = _error_reason(exc)
            if exc.code == 401:
                reason = f"user {self.username!r} was refused (401{': ' + reason if reason else ''}); " \
                         "the API needs a user with the management tag"
            elif reason:
                reason = f"HTTP {exc.code}: {reason}"
            else:
                reason = f"HTTP {exc.code} {exc.reason}"
            raise ManagementError(reason, reachable=True, status=exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            cause = getattr(exc, "reason", None) or exc
            raise ManagementError(redact_text(str(cause)) or type(exc).__name__) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ManagementError(f"{self.base} did not answer with JSON: is it the management API?",
                                  reachable=True) from None

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, params)

    # -- listings -----------------------------------------------------------------------
    def queues(self, vhost: str) -> list[dict[str, Any]]:
        """Every queue of ``vhost`` in one request, only the columns we show."""
        return self._list(f"/queues/{_seg(vhost)}", {"columns": ",".join(QUEUE_COLUMNS)})

    def queue(self, vhost: str, name: str) -> Any:
        return self.get(f"/queues/{_seg(vhost)}/{_seg(name)}", {"columns": ",".join(QUEUE_COLUMNS)})

    def queue_policy(self, vhost: str, name: str) -> Any:
        """One queue's type, arguments and the policy the API last saw applied (a sample: a
        policy made in the last few seconds may not show yet; see ``policies``)."""
        return self.get(f"/queues/{_seg(vhost)}/{_seg(name)}",
                        {"columns": "name,type,arguments,policy,operator_policy,effective_policy_definition"})

    def policies(self, vhost: str, operator: bool = False) -> list[dict[str, Any]]:
        """The vhost's policies (or operator policies) as they are now."""
        return self._list(f"/{'operator-policies' if operator else 'policies'}/{_seg(vhost)}", None)

    def bindings(self, vhost: str) -> list[dict[str, Any]]:
        return self._list(f"/bindings/{_seg(vhost)}", None)

    def exchanges(self, vhost: str) -> list[dict[str, Any]]:
        return self._list(f"/exchanges/{_seg(vhost)}", {"columns": "name,type"})

    def _list(self, path: str, params: dict[str, str] | None) -> list[dict[str, Any]]:
        rows = self.get(path, params)
        if isinstance(rows, dict) and "items" in rows:  # paginated form
            rows = rows["items"]
        if not isinstance(rows, list):
            raise ManagementError(f"unexpected answer from {self.base}/api{path}", reachable=True)
        return [r for r in rows if isinstance(r, dict)]


def _seg(text: str) -> str:
    """A path segment: vhost ``/`` is ``%2F``."""
    return quote(text, safe="")


def _error_reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("error") or "")
    return ""
