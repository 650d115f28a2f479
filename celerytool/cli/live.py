"""What the live commands (workers, inspect, revoke, events, top) share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from types import FrameType

    from celerytool.cli.app import App
    from celerytool.control.session import ControlSession


def open_session(app: App) -> ControlSession:
    """A ControlSession for the broker, closed (and its warnings printed) when the command ends."""
    from celerytool.control.session import ControlOptions, ControlSession

    session = ControlSession(app.broker_url, ControlOptions.of(app.broker_options()))

    restore = _terminate_like_ctrl_c()

    def close() -> None:
        try:
            session.close()
        finally:
            restore()
            flush(session)

    click.get_current_context().call_on_close(close)
    return session


def _terminate_like_ctrl_c() -> Callable[[], None]:
    """SIGTERM (``timeout``, ``kill``, a supervisor) cleans up as Ctrl-C does, instead of
    leaving the reply or event queue bound.  Returns what puts the old handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def flush(session: ControlSession) -> None:
    from celerytool.render import warn

    for w in session.warnings:
        warn(w)
    session.warnings.clear()
