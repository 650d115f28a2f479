"""celerytool export: write a queue's messages to NDJSON, byte-exact, optionally draining it."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import with_app
from celerytool.cli.selection_options import selection_options


@click.command("export")
@click.argument("queue", shell_complete=complete_queues)
@selection_options()
@click.option("--remove", is_flag=True, help="Drain: remove each message once its line is on disk.")
@click.option("-y", "--yes", is_flag=True, help="With --remove: do not ask.")
@click.option("--dry-run", is_flag=True, help="Count what would be exported; write nothing.")
@with_app
def command(app, queue, selection, outfile, legacy_outfile, remove, yes, dry_run):
    """Write the messages of QUEUE as NDJSON, one line each, in consumption order.

    Each line holds the stored envelope byte-exact ("raw", re-importable with
    `celerytool import`) and a decoded summary (id, task, args, kwargs, eta,
    expires, retries, error). Nothing changes unless --remove is given; then
    each batch is flushed and fsynced to the file before it leaves the queue.

    \b
    Examples:
      celerytool export celery --file celery.ndjson
      celerytool export celery --task 'tasks.broken' --remove --file broken.ndjson --yes
      celerytool export celery | jq -r .task | sort | uniq -c
    """
    import sys

    from celerytool.cli.guard import confirm, queue_total, running
    from celerytool.errors import CeleryToolError, ExitCode, UsageError
    from celerytool.render import note

    if legacy_outfile is not None:
        raise UsageError("export writes export records (NDJSON) and takes no -o; name the file with "
                         "--file FILE (the old `-o FILE` spelling is gone)")
    if remove and not dry_run:
        if not outfile or outfile == "-":
            raise UsageError("--remove needs --file FILE: a message leaves the queue only once its "
                             "line is safely in a file")
        confirm(yes, f"Export and REMOVE {selection.describe()} from queue {queue!r}?")
    broker = app.open_broker()
    ops = broker.ops()
    to_file = bool(outfile) and outfile != "-"
    try:
        out = open(outfile, "w", encoding="utf-8") if to_file and not dry_run else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write {outfile}: {exc.strerror or exc}") from None

    def write(records):
        try:
            out.writelines(r.line() for r in records)
            out.flush()
            if to_file and remove:  # a message leaves the queue only once its line is on disk
                _sync(out)
        except OSError as exc:  # disk full, I/O error: this batch stays in the queue
            raise CeleryToolError(f"cannot write {outfile}: {exc.strerror or exc}; the messages "
                                  "of the batch being written were not removed") from None

    try:
        with running(app, "exporting", queue_total(broker, queue), dry_run=dry_run) as control:
            result = ops.export(queue, selection, control, write, remove=remove)
    finally:
        if out is not sys.stdout:
            out.close()
    verb = "would export" if dry_run else "exported"
    summary = f"{verb} {result.matched} message(s) from {queue!r}"
    if to_file and not dry_run:
        summary += f" to {outfile}"
    if remove and not dry_run:
        summary += f", removed {result.done}"
    note(summary)
    if result.interrupted:
        note("interrupted")
        return int(ExitCode.INTERRUPTED)
    return 0


def _sync(out) -> None:
    """fsync, where the file can be synced (a pipe or /dev/null cannot: nothing to wait for)."""
    import errno
    import os

    try:
        os.fsync(out.fileno())
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
            raise


def _replace_output_option(cmd: click.Command) -> click.Command:
    """export writes export records (NDJSON) only: no format to choose, --file names the file.
    A hidden -o explains that `-o FILE`, the spelling of an earlier release, is gone."""
    cmd.params = [p for p in cmd.params if p.name != "output"]
    cmd.params.append(click.Option(["-f", "--file", "outfile"], metavar="FILE",
                                   help="Write to FILE instead of stdout."))
    cmd.params.append(click.Option(["-o", "--output", "legacy_outfile"], metavar="FILE", hidden=True,
                                   help="Removed: export takes --file FILE."))
    return cmd


command = _replace_output_option(command)
