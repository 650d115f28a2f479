"""celerytool forget: delete stored task results (Celery's AsyncResult.forget), selected."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app
from celerytool.cli.result_selection import open_store, result_selection


@click.command("forget")
@result_selection
@with_app
def command(app, criteria, every, backend_keyprefix, backend_table_names, yes,
            dry_run):
    """Delete stored results: by id, or every result matching the filters.

    Redis: the metas are walked with SCAN, read in batches and deleted in
    batches with UNLINK (never KEYS, never one command per key). Databases
    (db+..., django-db+...): the filters are the WHERE of a DELETE done in
    batches of 5,000 rows, one commit each. Filters combine: all must match.
    A Redis value that cannot be decoded is counted as undecodable and kept.

    \b
    Examples:
      celerytool forget 5f2b7c1e-2c4d-4a3e-9d8f-1b2c3d4e5f60 --yes
      celerytool forget --status SUCCESS --older-than 1h --dry-run
      celerytool forget --task 'reports.*' --status FAILURE -y -o json
      celerytool forget --older-than 30d --backend db+postgresql://celery@db/results -y
      celerytool results --status FAILURE -o json | jq -r '.[].id' | celerytool forget --from - -y
    """
    from celerytool.cli.guard import confirm, finish, running

    store = open_store(app, backend_keyprefix, backend_table_names)
    what = criteria.describe()
    if not dry_run:
        confirm(yes, f"Delete {what} from {app.backend_url.redacted()}?")
    with running(app, "forgetting", None, dry_run=dry_run) as control:
        result = store.forget(criteria, control)
    if dry_run:
        summary = f"would delete {result.matched} of {result.examined} result(s) examined ({what})"
    else:
        summary = f"deleted {result.done} result(s) of {result.examined} examined ({what})"
    if result.undecodable:
        summary += f"; {result.undecodable} could not be decoded and were kept"
    return finish(app, result, summary)
