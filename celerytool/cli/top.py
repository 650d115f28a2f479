"""celerytool top: a full-screen live view of queues, workers and failures."""

from __future__ import annotations

import click

from celerytool.cli.live import open_session
from celerytool.cli.options import Duration, with_app


@click.command("top")
@click.option("--once", is_flag=True, help="Print one snapshot and exit (with -o json: for scripts).")
@click.option("--interval", type=Duration(0.2, 60), default=1.0, show_default=True,
              help="Time between refreshes (200ms .. 1m).")
@click.option("--enable", is_flag=True,
              help="Ask workers to send task events first (for workers started without -E).")
@with_app
def command(app, once, interval, enable):
    """Watch the system live: queues with their depth, change per second and
    a sparkline of the last minutes; workers with active tasks and tasks/s
    (from task events when workers send them, from their stats otherwise);
    the latest failures with their exception line. q or Ctrl-C quits.

    \b
    Examples:
      celerytool top -b redis://cache:6379/0
      celerytool top --enable            # workers started without -E
      celerytool top --once -o json | jq '.queues[] | select(.messages > 1000)'
    """
    import sys

    from celerytool.control.inspect import gather_workers
    from celerytool.control.top import TopState
    from celerytool.errors import UsageError

    broker = app.open_broker()
    session = open_session(app)
    state = TopState(app.broker_url.redacted(), broker.queues)
    if once:
        state.sample_queues()
        state.set_workers(gather_workers(session, 1.0))
        app.emit_one(state.snapshot(), "top")
        return 0
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UsageError("top needs a terminal; for scripts use: celerytool top --once -o json")
    try:
        _run(session, state, interval, enable)
    except KeyboardInterrupt:
        pass
    return 0


def _run(session, state, interval, enable):
    import time

    from rich.console import Console
    from rich.live import Live

    from celerytool.cli.keys import KeyReader
    from celerytool.control.events import EventStream, enable_events
    from celerytool.control.inspect import gather_workers
    from celerytool.render.top import screen

    state.sample_queues()
    state.set_workers(gather_workers(session, 1.0))
    if enable:
        enable_events(session)
    last_queues = last_workers = time.monotonic()
    stream = EventStream(session, interval=0.2)
    batches = stream.batches()
    console = Console()
    try:
        state.add_events(next(batches))  # bound to the event exchange before the first screen
        with KeyReader() as keys, Live(screen(state.snapshot()), console=console, screen=True,
                                       auto_refresh=False) as live:
            for batch in batches:
                state.add_events(batch)
                if keys.pressed() & {"q", "Q"}:
                    return
                now = time.monotonic()
                if now - last_queues < interval:
                    continue
                state.sample_queues()
                last_queues = now
                if now - last_workers >= max(2.0, interval):
                    state.set_workers(gather_workers(session, 0.5))
                    last_workers = time.monotonic()
                live.update(screen(state.snapshot()), refresh=True)
    finally:
        batches.close()
        if stream.malformed:  # said once the screen is gone
            session.warnings.append(f"skipped {stream.malformed} malformed event(s); the first: "
                                    f"{stream.malformed_reasons[0]}")
