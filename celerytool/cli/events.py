"""celerytool events: the live event stream, NDJSON when piped, a line per event on a terminal."""

from __future__ import annotations

import click

from celerytool.cli.live import open_session
from celerytool.cli.options import limit_option, timeout_option, with_app


@click.command("events")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only these event types (task-failed, worker-online, task-*, ...); repeatable. "
                   "Heartbeats only when asked: --type worker-heartbeat.")
@click.option("--task", "tasks", multiple=True, metavar="GLOB",
              help="Only events of tasks with this name (shell glob); repeatable.")
@click.option("--worker", metavar="NAME", help="Only events from this worker (name@host, shell glob).")
@limit_option(help="Stop after N events (exit 0).", dest="count")
@click.option("--count", "old_count", type=click.IntRange(min=1), hidden=True, help="Old spelling of -n/--limit.")
@timeout_option(None, "Stop after this long (exit 124 unless -n was reached).")
@click.option("--enable", is_flag=True,
              help="First ask every worker to send task events (for workers started without -E).")
@with_app
def command(app, types, tasks, worker, count, old_count, timeout, enable):
    """Follow what workers report as it happens: tasks sent, received,
    started, succeeded, failed, retried, revoked; workers online/offline.

    NDJSON (Celery's event fields) when stdout is not a terminal or with
    -o ndjson; a readable line per event on a terminal. Workers send task
    events only when started with -E or after --enable (which stays in
    effect until they restart). Exit 0 when -n is reached or on Ctrl-C, 124
    when --timeout passes first. The event queue is removed on exit.

    \b
    Examples:
      celerytool events --type task-failed
      celerytool events --task 'billing.*' -n 100 -o ndjson > billing-events.ndjson
      celerytool events --enable --timeout 60 | jq -r 'select(.type=="task-failed") | .exception'
    """
    import os
    import sys
    import time

    if old_count is not None:
        from celerytool.render import warn

        warn("events --count is now -n/--limit (as in every command); the old spelling goes away "
             "in the next release")
        count = count or old_count
    from celerytool.control.events import EVENT_TYPES, EventFilter, EventStream, enable_events
    from celerytool.errors import ExitCode, UsageError
    from celerytool.render import note
    from celerytool.render.live import EventWriter

    for t in types:
        if "*" not in t and "?" not in t and t not in EVENT_TYPES:
            raise UsageError(f"unknown event type {t!r} (one of {', '.join(EVENT_TYPES)})")
    chosen = app.output or os.environ.get("CELERYTOOL_OUTPUT")
    fmt = chosen or ("table" if sys.stdout.isatty() else "ndjson")
    session = open_session(app)
    filt = EventFilter(types=types, tasks=tasks, worker=worker)
    writer = EventWriter(fmt, sys.stdout)
    seen = 0
    deadline = time.monotonic() + timeout if timeout else None
    stream = EventStream(session)
    batches = stream.batches()
    told, told_reasons = 0, []
    try:
        first = True
        for batch in batches:
            if first:
                first = False
                if enable:
                    agreed, failed = enable_events(session)
                    note(f"asked every worker to send task events (enable_events): {len(agreed)} agreed; "
                         "they keep sending them until restarted or told disable_events")
                    for name, error in sorted(failed.items()):
                        note(f"{name}: {error}")
                if sys.stderr.isatty():
                    note("listening for events (Ctrl-C to stop)")
            for event in batch:
                filt.remember(event)
                if not filt.matches(event):
                    continue
                writer.write(event)
                seen += 1
                if count and seen >= count:
                    break
            writer.flush()
            if stream.malformed > told:
                for why in stream.malformed_reasons[len(told_reasons):]:
                    note(f"skipped a malformed event: {why}")
                    told_reasons.append(why)
                told = stream.malformed
            if count and seen >= count:
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                note(f"{seen} event(s) in {timeout:g} s" + (f", fewer than {count}" if count else ""))
                return int(ExitCode.TIMEOUT)
    except KeyboardInterrupt:
        writer.flush()
        return 0
    finally:
        batches.close()
        writer.close()
        if stream.malformed > len(told_reasons):
            note(f"skipped {stream.malformed} malformed event(s) in all")
