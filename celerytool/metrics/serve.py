"""``metrics --serve``: prometheus_client's exposition over HTTP, and the event loop behind it.

``/metrics`` is prometheus_client's own WSGI app (it negotiates OpenMetrics or
the Prometheus text format from the Accept header, and gzip); ``/health``
answers 200 when the broker answers, else 503 with the reason.  ``follow``
reads the event stream into ``EventMetrics`` until told to stop, opening the
stream again (with a growing pause) whenever the broker goes away.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from celerytool.errors import BrokerUnavailable, CeleryToolError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from celerytool.control.events import EventStream
    from celerytool.control.session import ControlSession

Health = Callable[[], tuple[bool, str]]


def parse_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``9808``, ``:9808``, ``0.0.0.0:9808``, ``[::1]:9808`` -> (host, port); ValueError if not."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    value = int(port)
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} out of range")
    return host, value


def wsgi_app(registry: CollectorRegistry, health: Health) -> Callable[..., Iterable[bytes]]:
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/health":
            ok, reason = health()
            body = (reason + "\n").encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"celerytool metrics: /metrics, /health\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: /metrics, /health\n"]

    return app


class Server:
    """A threaded WSGI server (prometheus_client's) in a daemon thread."""

    def __init__(self, app: Callable[..., Iterable[bytes]], host: str, port: int) -> None:
        import socket
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client.exposition import ThreadingWSGIServer

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        try:
            self.httpd = make_server(host, port, app, server_class=Server, handler_class=Quiet)
        except OSError as exc:
            raise CeleryToolError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.address = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def follow(open_stream: Callable[[], tuple[ControlSession, EventStream]],
           feed: Callable[[list[dict[str, Any]]], None], stop: threading.Event,
           report: Callable[[bool, str], None], first: Callable[[ControlSession], None] | None = None) -> None:
    """Feed event batches until ``stop`` is set; ``open_stream()`` -> (session, EventStream).

    ``report(up, reason)`` is told whenever the stream starts or stops working.
    """
    pause = 1.0
    while not stop.is_set():
        session = None
        try:
            session, stream = open_stream()
            batches = stream.batches()
            try:
                started = False
                for batch in batches:
                    if not started:
                        started = True
                        report(True, "ok")
                        if first is not None:
                            first(session)
                    feed(batch)
                    pause = 1.0
                    if stop.is_set():
                        break
            finally:
                batches.close()
        except (BrokerUnavailable, CeleryToolError) as exc:
            report(False, exc.message)
        except OSError as exc:  # a connection reset the adapters did not translate
            report(False, str(exc) or type(exc).__name__)
        finally:
            if session is not None:
                try:
                    session.close()
                except Exception:
                    pass
        stop.wait(pause)
        pause = min(pause * 2, 30.0)
