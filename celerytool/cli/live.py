"""What the live commands (workers, inspect, revoke, events, top) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def timeout_option(default: float, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("-t", "--timeout", type=click.FloatRange(0.05, 3600), default=default,
                        show_default=True, metavar="S", help=what)


def open_session(app: Any) -> Any:
    """A ControlSession for the broker, closed (and its warnings printed) when the command ends."""
    from celerytool.brokers.base import BrokerOptions  # noqa: F401  (the options type)
    from celerytool.control.session import ControlSession

    if app.broker_url.kind not in ("redis", "amqp"):
        from celerytool.errors import UsageError

        raise UsageError(f"{app.broker_url.scheme}:// is not a broker URL")
    session = ControlSession(app.broker_url, app.broker_options())

    def close() -> None:
        try:
            session.close()
        finally:
            flush(session)

    click.get_current_context().call_on_close(close)
    return session


def flush(session: Any) -> None:
    from celerytool.render import warn

    for w in session.warnings:
        warn(w)
    session.warnings.clear()
