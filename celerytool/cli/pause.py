"""celerytool pause: stop the workers consuming a queue (`resume` starts exactly those again).

`pause` asks every worker that consumes QUEUE (Celery's ``cancel_consumer``) and keeps a
record in the broker of whom it stopped (``brokers.base.PAUSE_RECORDS``): `resume`, run
by anyone, asks exactly those (``add_consumer``). The pause lives in worker memory: a
restarted worker consumes its queues again.
"""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import with_app
from celerytool.cli.steering import steering_options

LASTS = "lasts until `celerytool resume` (or until a worker restarts: it then consumes its queues again)"


@click.command("pause")
@click.argument("queue", shell_complete=complete_queues)
@steering_options
@with_app
def command(app, queue, destination, timeout, yes, dry_run):
    """Stop the workers consuming QUEUE (messages stay queued) until `resume`.

    Every worker that answers a ping and consumes QUEUE is asked (or only
    those given with -d/--destination); a record of the workers stopped is
    kept in the broker (Redis: the hash celerytool.paused; RabbitMQ: the
    queue celerytool.paused.QUEUE), so `resume QUEUE`, by anyone, starts
    exactly those again. `queues` and `workers` show the queue as paused.
    Tasks a worker already holds still run. A worker that restarts consumes
    its queues again. Exit 0 when every asked worker said ok, 1 when any
    answered with an error or not at all (or none consumes QUEUE), 69 when
    none answered.

    \b
    Examples:
      celerytool pause reports --yes
      celerytool pause reports -d celery@batch1 --dry-run
      celerytool pause reports --yes && celerytool purge reports --task tasks.bad --yes && celerytool resume reports --yes
    """
    from datetime import datetime, timezone

    from celerytool.cli.guard import confirm
    from celerytool.cli.live import open_session
    from celerytool.cli.steering import dry_run_report, report
    from celerytool.control.steer import NO_REPLY, addressed, consumers_of, steer
    from celerytool.errors import ExitCode
    from celerytool.model import PauseRecord
    from celerytool.render import note

    session = open_session(app)
    broker = app.open_broker()
    asked = addressed(session, list(destination) or None, timeout)
    if not asked:
        note(f"no worker answered a ping within {timeout:g} s: nothing asked")
        return int(ExitCode.UNAVAILABLE)
    consuming = consumers_of(session, queue, asked, timeout)
    before = broker.pause_records([queue]).get(queue)
    for worker in asked:
        if worker not in consuming and destination:
            note(f"{worker} does not consume {queue!r} (or did not answer): not asked")
    if not consuming:
        if before is not None:
            note(f"{queue!r} is already paused (on {', '.join(before.workers) or 'unknown workers'}); "
                 "no answering worker consumes it")
            return 0
        note(f"no answering worker consumes {queue!r}: nothing to pause")
        return 1
    what = f"pause {queue!r}"
    if dry_run:
        return dry_run_report(app, "cancel_consumer", {"queue": queue}, what, consuming)
    confirm(yes, f"Stop {len(consuming)} worker(s) consuming {queue!r} ({', '.join(consuming)})?")
    earlier = before.workers if before else ()

    def record(workers: list[str]) -> PauseRecord:
        return PauseRecord(queue, tuple(dict.fromkeys([*earlier, *workers])),
                           datetime.now(timezone.utc).isoformat(timespec="seconds"), _who())

    broker.save_pause_record(queue, record(consuming))  # first: a pause is never unrecorded
    acks = steer(session, "cancel_consumer", {"queue": queue}, consuming, timeout)
    stopped = [a.worker for a in acks if a.ok or a.reply == NO_REPLY]  # silent: maybe stopped
    if stopped or earlier:
        broker.save_pause_record(queue, record(stopped))
    else:
        broker.save_pause_record(queue, None)
    return report(app, acks, what, timeout, after=LASTS)


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name (a container without /etc/passwd entry)
        user = "?"
    return f"{user}@{socket.gethostname()}"
