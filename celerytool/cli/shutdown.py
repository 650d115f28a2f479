"""celerytool shutdown: warm shutdown of workers, confirmed by pinging them until they are gone."""

from __future__ import annotations

import click

from celerytool.cli.options import dry_run_option, timeout_option, with_app, yes_option


@click.command("shutdown")
@click.option("-d", "--destination", "destination", multiple=True, metavar="WORKER",
              help="Shut down only this worker (repeatable) [default: every worker answering a ping].")
@timeout_option(10.0, "Seconds to wait until the workers no longer answer a ping.")
@yes_option()
@dry_run_option("Say which workers would be shut down; send nothing.")
@with_app
def command(app, destination, timeout, yes, dry_run):
    """Warm shutdown: workers finish the tasks they run, then exit.

    Workers send no reply to a shutdown, so this pings them until none
    answers any more, or --timeout: a worker still answering then is
    reported as not shut down (it may still be finishing tasks). Exit 0 when
    every addressed worker is gone, 1 when any still answers, 69 when none
    answered the first ping.

    \b
    Examples:
      celerytool shutdown -d celery@batch1 --yes
      celerytool shutdown --dry-run
    """
    from celerytool.cli.guard import confirm
    from celerytool.cli.live import open_session
    from celerytool.control.steer import addressed
    from celerytool.control.steer import shutdown as shut
    from celerytool.errors import ExitCode
    from celerytool.render import note

    session = open_session(app)
    workers = addressed(session, list(destination) or None, min(timeout, 1.0))
    if not workers:
        note("no worker answered a ping: nothing to shut down")
        return int(ExitCode.UNAVAILABLE)
    if dry_run:
        from celerytool.cli.steering import dry_run_report

        return dry_run_report(app, "shutdown", {}, "shut down", workers,
                              said=f"would shut down {len(workers)} worker(s): {', '.join(workers)}")
    confirm(yes, f"Shut down {len(workers)} worker(s) ({', '.join(workers)})?")
    note("workers send no reply to shutdown: pinging them until they are gone")
    acks = shut(session, workers, timeout)
    app.emit(acks, "revoke" if app.fmt == "table" else "result")
    failed = [a for a in acks if not a.ok]
    for a in failed:
        note(f"{a.worker}: {a.reply}")
    if all(a.reply.startswith("did not answer") for a in acks):
        return int(ExitCode.UNAVAILABLE)
    return 1 if failed else 0
