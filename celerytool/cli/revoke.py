"""celerytool revoke: make workers skip tasks by id (or kill them with --terminate)."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.live import open_session
from celerytool.cli.options import queue_option, timeout_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("revoke")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--from", "from_file", type=click.File("r"), metavar="FILE|-",
              help="Read task ids from FILE (one a line; - for stdin).")
@queue_option("Revoke the ids the selection finds in QUEUE (the messages stay where they are).",
              shell_complete=complete_queues)
@selection_options()
@click.option("--active", "from_active", is_flag=True,
              help="Revoke the tasks workers are running now (inspect active) that --task/--id/--where pick.")
@click.option("--reserved", "from_reserved", is_flag=True,
              help="Revoke the tasks workers have prefetched (inspect reserved) that --task/--id/--where pick.")
@click.option("--terminate", is_flag=True, help="Also kill the process running the task, if one is.")
@click.option("--signal", "sig", metavar="SIG", help="Signal for --terminate [default TERM], e.g. KILL.")
@timeout_option(1.0, "Seconds to wait for acknowledgements.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="List the ids that would be revoked; send nothing.")
@with_app
def command(app, ids, from_file, queue, selection, from_active, from_reserved, terminate, sig, timeout, yes,
            dry_run):
    """Tell every worker to skip the tasks with these ids; --terminate also
    kills a task that is running.

    Ids come from the arguments, from --from FILE (one a line, - for stdin),
    or from a queue: --queue QUEUE with --task/--id/--where/--limit picks
    them as peek would, and leaves the messages in the queue (a worker that
    receives one skips it and stores REVOKED). Revocations live in worker
    memory: they are lost when a worker restarts unless it runs with
    --statedb, and workers started later learn them only through mingle.

    \b
    Examples:
      celerytool revoke 9f1c0a52-6a43-4a0e-9a51-0c7e0f3b8d11 --yes
      celerytool revoke --terminate --signal KILL 9f1c0a52-6a43-4a0e-9a51-0c7e0f3b8d11
      celerytool results --status STARTED -o json | jq -r '.[].id' | celerytool revoke --from - -y
      celerytool revoke --queue celery --task tasks.send_newsletter --dry-run
      celerytool revoke --active --reserved --task tasks.export_all --terminate -y
    """
    from celerytool.cli.guard import confirm
    from celerytool.control.revoke import MEMORY_NOTE, read_ids, revoke, signal_name
    from celerytool.errors import UsageError
    from celerytool.render import emit, note

    if sig and not terminate:
        raise UsageError("--signal needs --terminate")
    signame = signal_name(sig) if sig else None
    held = [w for w, on in (("active", from_active), ("reserved", from_reserved)) if on]
    if not queue and not held and not selection.empty:
        raise UsageError("--task/--id/--where/--limit select messages of a queue (--queue QUEUE) "
                         "or tasks workers hold (--active, --reserved)")
    wanted = list(ids)
    if from_file is not None:
        wanted += read_ids(from_file)
    if queue:
        wanted += _ids_in_queue(app, queue, selection)
    if held:
        wanted += _ids_held(app, held, selection, timeout)
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        if queue or held:
            where = " or ".join(([f"queue {queue!r}"] if queue else []) + [f"the {w} tasks" for w in held])
            note(f"nothing in {where} matches {selection.describe()}: nothing to revoke")
            return 0
        if from_file is not None:  # an empty pipe (`results --status STARTED | revoke --from -`)
            from celerytool.cli.guard import no_ids_in

            return no_ids_in(from_file, "revoke")
        raise UsageError("give task ids, --from FILE or --queue QUEUE")
    what = f"{len(wanted)} task(s)" + (" and terminate them if running" if terminate else "")
    if dry_run:
        if app.fmt == "table":
            emit([{"id": i} for i in wanted], "table", "worker-value")
        else:
            app.emit_one({"ids": wanted, "terminate": terminate, "dry_run": True}, "result")
        note(f"would revoke {what}")
        return 0
    confirm(yes, f"Revoke {what} on every worker of {app.broker_url.redacted()}?")
    session = open_session(app)
    acks = revoke(session, wanted, terminate=terminate, signal=signame, timeout=timeout)
    ok = [a for a in acks if a.ok]
    if app.fmt == "table":
        app.emit(acks, "revoke")
    else:
        app.emit_one({"ids": wanted, "terminate": terminate, "signal": signame, "dry_run": False,
                      "acknowledged_by": [a.worker for a in ok],
                      "replies": [a.to_json() for a in acks]}, "result")
    if not ok:
        note(f"no worker acknowledged the revocation of {len(wanted)} task(s)")
        return 1
    note(f"{len(wanted)} task(s) revoked, acknowledged by {len(ok)} worker(s); {MEMORY_NOTE}")
    return 0


def _ids_in_queue(app, queue, selection):
    """The ids of the selected messages of ``queue``, read as peek reads them."""
    import itertools

    from celerytool.selection import MessageView

    selection.require_no_age("queued messages")
    broker = app.open_broker()
    found = (m.id for m in broker.peek(queue, None)
             if m.id and (selection.is_all or selection.matches(MessageView(m))))
    return list(itertools.islice(found, selection.limit) if selection.limit else found)


def _ids_held(app, which, selection, timeout):
    """The ids of the tasks workers hold (inspect active / reserved) that the selection picks."""
    import itertools

    from celerytool.control.inspect import inspect
    from celerytool.selection import MessageView

    session = open_session(app)
    rows = [row for what in which for row in inspect(session, what, None, timeout)[0]]
    found = (r.id for r in rows if r.id and (selection.is_all or selection.matches(MessageView(r))))
    return list(itertools.islice(found, selection.limit) if selection.limit else found)
