"""celerytool retry: send stored failed tasks again, by name, with their stored args, kwargs and queue."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import Duration, backend_options, limit_option, queue_option, with_app


@click.command("retry")
@click.argument("ids", nargs=-1, metavar="[ID...|-]")
@click.option("--from", "from_file", type=click.File("r"), metavar="FILE|-",
              help="Ids to retry, one a line (or NDJSON lines with an \"id\", e.g. failures --ids / results -o ndjson).")
@click.option("--task", "task_globs", multiple=True, metavar="GLOB", help="Only task names matching GLOB; repeatable.")
@click.option("--exception", "exceptions", multiple=True, metavar="TYPE",
              help="Only failures with this exception type (e.g. ValueError). Repeatable.")
@click.option("--since", type=Duration(), metavar="DURATION", help="Only failures done within e.g. 15m, 1h30m, 2d.")
@click.option("--status", "statuses", type=click.Choice(["FAILURE", "REVOKED"], case_sensitive=False),
              multiple=True, metavar="S", help="Which stored states to retry: FAILURE, REVOKED [default FAILURE]. Repeatable.")
@queue_option("Send to this queue instead of the stored one.", celery_spelling=True, shell_complete=complete_queues)
@click.option("--same-id", is_flag=True, help="Re-use each task's id (its stored result is overwritten when it runs).")
@click.option("--forget", is_flag=True, help="Delete each old result once its new task is sent.")
@click.option("--countdown", type=Duration(), help="Run no earlier than this long from now (90, 15m, 1h30m).")
@click.option("--eta", metavar="DATETIME", help="Run no earlier than this ISO 8601 time (no offset = UTC).")
@click.option("--expires", metavar="DURATION|DATETIME",
              help="Revoke if not started within this long (90, 10m, 1h30m) or by this ISO 8601 time.")
@click.option("--priority", type=click.IntRange(0, 255), help="0-9 on Redis (0 = served first), 0-255 on RabbitMQ.")
@limit_option(help="At most N tasks.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@backend_options
@with_app
def command(app, ids, from_file, task_globs, exceptions, since, statuses, queue, same_id, forget, countdown,
            eta, expires, priority, limit, yes, dry_run, backend_keyprefix, backend_table_names):
    """Send failed tasks again: by id, or every stored failure a filter selects.

    Each task is sent by name with the args, kwargs and queue stored with its
    result (Celery stores them with result_extended=True; ids stored without
    them are listed on stderr with the reason, and skipped), through the same
    path as `send`. A new task id by default, the old result stays (--forget
    deletes it once the new task is sent; --same-id re-uses the id). The new
    message names the id it retries in its `retry_of` header and as its
    `parent_id` (stored with the new result). No stored failure is sent twice
    in one run.

    \b
    Examples:
      celerytool retry --exception ValueError --since 1h --dry-run
      celerytool retry 61c88321-80d5-4760-84ff-4430ce679e70 --yes
      celerytool failures -o json --ids | jq -r '.[0].ids[]' | celerytool retry - --yes
      celerytool retry --task 'billing.*' --queue billing-slow --countdown 60 --yes -o json

    \b
    Exit codes: 0 sent (or nothing selected); 1 none of the selected could be
    retried; 2 usage; 69 broker or backend unreachable.
    """
    from celerytool.bulk import gc_paused
    from celerytool.cli.retrying import Retry
    from celerytool.errors import UsageError

    if same_id and forget:
        raise UsageError("--forget with --same-id would delete the new result: give one of them")
    selection = Retry(app, backend_keyprefix=backend_keyprefix, backend_table_names=backend_table_names)
    wanted = frozenset(s.upper() for s in statuses) or frozenset({"FAILURE"})
    given = selection.given_ids(ids, from_file)
    options = dict(countdown=countdown, eta=eta, expires=expires, priority=priority)
    filters = dict(statuses=wanted, task_globs=task_globs, exceptions=exceptions, since=since, queue=queue)
    with gc_paused():
        if yes and not dry_run:  # nothing to confirm: send while the next results are read
            outcomes = selection.selected(given, **filters, ahead=True)
            return selection.run_stream(outcomes, options, limit=limit, same_id=same_id, forget=forget)
        plans, skipped = selection.select(given, **filters, limit=limit)
        return selection.run(plans, skipped, options, same_id=same_id, forget=forget, yes=yes, dry_run=dry_run)
