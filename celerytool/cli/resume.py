"""celerytool resume: start again the workers that `celerytool pause` stopped consuming a queue
(from the pause record kept in the broker; see cli/pause.py)."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import with_app
from celerytool.cli.steering import steering_options


@click.command("resume")
@click.argument("queue", shell_complete=complete_queues)
@steering_options
@click.option("--drop-record", is_flag=True,
              help="Remove the pause record even when some of its workers do not answer (gone for good).")
@with_app
def command(app, queue, destination, timeout, yes, dry_run, drop_record):
    """Start again the workers that `pause QUEUE` stopped.

    The workers are those of the pause record kept in the broker (whoever
    paused it), or only those given with -d/--destination. Each is asked to
    consume QUEUE again (Celery's add_consumer, with the worker's own
    definition of the queue); the record forgets each worker that said ok
    and is removed once none is left (or with --drop-record). Exit 0 when every
    asked worker said ok, 1 when any answered with an error or not at all
    (they stay in the record: run resume again) or QUEUE is not paused, 69
    when none answered.

    \b
    Examples:
      celerytool resume reports --yes
      celerytool resume reports -d celery@batch1 --yes
      celerytool resume reports --drop-record --yes   # a paused worker is gone for good
    """
    from dataclasses import replace

    from celerytool.cli.guard import confirm
    from celerytool.cli.live import open_session
    from celerytool.cli.steering import dry_run_report, report
    from celerytool.control.steer import steer
    from celerytool.render import note

    session = open_session(app)
    broker = app.open_broker()
    before = broker.pause_records([queue]).get(queue)
    workers = list(dict.fromkeys(destination)) or list(before.workers if before else ())
    if not workers:
        if before is None:
            note(f"{queue!r} is not paused (no pause record in the broker); name workers with -d to "
                 "make them consume it")
        else:
            note(f"the pause record of {queue!r} names no worker; name them with -d"
                 + ("" if drop_record else ", or remove the record with --drop-record"))
            if drop_record and not dry_run:
                confirm(yes, f"Remove the pause record of {queue!r}?")
                broker.save_pause_record(queue, None)
                return 0
        return 1
    what = f"resume {queue!r}"
    if dry_run:
        return dry_run_report(app, "add_consumer", {"queue": queue}, what, workers)
    confirm(yes, f"Start {len(workers)} worker(s) consuming {queue!r} again ({', '.join(workers)})?")
    acks = steer(session, "add_consumer", {"queue": queue}, workers, timeout)
    if before is not None:
        done = {a.worker for a in acks if a.ok}
        left = tuple(w for w in before.workers if w not in done)
        if left and not drop_record:
            broker.save_pause_record(queue, replace(before, workers=left))
            note(f"{queue!r} stays paused on {', '.join(left)} (run resume again, or --drop-record)")
        else:
            broker.save_pause_record(queue, None)
    return report(app, acks, what, timeout)
