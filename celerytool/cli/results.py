"""celerytool results: list stored task results, newest first, filtered (SCAN, never KEYS)."""

from __future__ import annotations

import click

from celerytool.cli.options import (
    Duration,
    backend_options,
    full_ids_option,
    limit_option,
    with_app,
)


@click.command("results")
@click.option("--status", "statuses", multiple=True, metavar="S",
              help="Only these states (repeatable or comma-separated), e.g. FAILURE.")
@click.option("--task", "task_globs", multiple=True, metavar="GLOB",
              help="Only task names matching GLOB (needs result_extended); repeatable.")
@click.option("--since", type=Duration(), metavar="DURATION", help="Only results done within this long (90s, 15m, 1h30m, 2d).")
@limit_option(50, "At most N results.")
@backend_options
@full_ids_option
@with_app
def command(app, statuses, task_globs, since, limit, backend_keyprefix, backend_table_names):
    """List the results the backend holds, newest first.

    On Redis, walks the keys with SCAN (never KEYS), so it is safe on a busy
    server; only the newest N are kept in memory. On a database backend
    (db+..., django-db+...) the filters are the query's WHERE, ORDER BY
    date_done DESC and LIMIT N. Results not yet done (no date) come last.

    \b
    Examples:
      celerytool results --status FAILURE --since 1h
      celerytool results --task 'billing.*' -n 10 -o json | jq -r '.[].id'
      celerytool results --status FAILURE --backend db+postgresql://app@db/app
    """
    import datetime as dt

    from celerytool.backends.query import ResultQuery

    wanted = frozenset(s.strip().upper() for item in statuses for s in item.split(",") if s.strip())
    backend = app.open_backend(backend_keyprefix, backend_table_names)
    cutoff = None if since is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
    rows = backend.select(ResultQuery(statuses=wanted, task_globs=task_globs, since=cutoff, limit=limit))
    count = app.emit(rows, "result")
    if count == 0 and app.fmt == "table":
        from celerytool.render import note

        note("no matching results")
