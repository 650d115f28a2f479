"""celerytool import: republish the messages of an export file, unchanged."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import with_app


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("queue", shell_complete=complete_queues)
@click.option("--keep-routing", is_flag=True,
              help="Keep delivery_info as exported even when it names another queue.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="Check the file and count; publish nothing.")
@with_app
def command(app, file, queue, keep_routing, yes, dry_run):
    """Publish every message of FILE (from `celerytool export`) to QUEUE.

    Messages go in unchanged (ids, headers, bodies, byte for byte) and in
    the file's order, each to the priority list it was exported from. The
    whole file is checked first: a line that is not an export record stops
    the import before anything is published, naming the line. It changes the
    broker, so it asks first on a terminal and needs --yes otherwise.

    \b
    Examples:
      celerytool import celery.ndjson celery --dry-run
      celerytool import celery.ndjson celery
      celerytool export celery --task 'tasks.x' --remove --file x.ndjson -y && celerytool import x.ndjson celery -y
    """
    from celerytool.cli.exportfile import open_export
    from celerytool.cli.guard import confirm, finish, running

    with open_export(file) as source:
        source.check()
        broker = app.open_broker()
        ops = broker.ops()
        if not dry_run:
            confirm(yes, f"Publish {source.count} message(s) from {file} to queue {queue!r} "
                         f"on {app.broker_url.redacted()}?")
        with running(app, "importing", source.count, dry_run=dry_run) as control:
            result = ops.import_(queue, source.records(), control, keep_routing=keep_routing)
    verb = "would import" if dry_run else "imported"
    return finish(app, result, f"{verb} {result.done} message(s) into {queue!r}")
