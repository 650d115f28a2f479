"""celerytool failures: failed results from the result backend, grouped; exit 1 when there are any."""

from __future__ import annotations

import click

from celerytool.cli.options import (
    Duration,
    backend_options,
    full_ids_option,
    limit_option,
    with_app,
)


def _by(value):
    from celerytool.backends.failures import parse_by

    if not isinstance(value, str):
        return value
    try:
        return parse_by(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("failures")
@click.option("--since", type=Duration(), metavar="DURATION",
              help="Only failures done within e.g. 90s, 15m, 1h30m, 2d.")
@click.option("--task", "task_globs", multiple=True, metavar="GLOB",
              help="Only task names matching GLOB (needs result_extended); repeatable.")
@click.option("--by", "by", default="exception", show_default=True, callback=lambda _c, _p, v: _by(v),
              metavar="FIELD", help="Group by exception, task, worker, queue, or several: task,exception.")
@click.option("--revoked", is_flag=True, help="Count REVOKED results too (not only FAILURE).")
@click.option("--ids", "keep_ids", is_flag=True, help="JSON / NDJSON: every id of each group (`ids`).")
@limit_option(help="At most N groups (the most frequent).")
@backend_options
@full_ids_option
@with_app
def command(app, since, task_globs, by, revoked, keep_ids, limit, backend_keyprefix, backend_table_names):
    """What is failing: failed results grouped, the most frequent first.

    Groups FAILURE results (and REVOKED with --revoked) by exception type and
    the first line of its message, with numbers and ids folded (a part that
    is the same in every failure of the group is kept: "Timeout connecting
    to 10.0.0.# after # s"); or by task, worker or queue (these two need the
    app's result_extended). Each group: count, first and last date_done, the
    tasks involved, an example id and the last traceback line. On Redis every
    result key is walked with SCAN; on a database backend it is one query.
    Exit 0 when there are none, 1 when there are some (a monitoring check).

    \b
    Examples:
      celerytool failures --since 1h
      celerytool failures --by task,exception --task 'billing.*'
      celerytool failures --since 1d -o json --ids | jq -r '.[0].ids[]' | celerytool retry - --yes
      celerytool failures --backend db+postgresql://app@db/app
    """
    import datetime as dt

    from celerytool.backends.failures import Grouper
    from celerytool.backends.query import ResultQuery

    states = frozenset({"FAILURE", "REVOKED"} if revoked else {"FAILURE"})
    cutoff = None if since is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
    backend = app.open_backend(backend_keyprefix, backend_table_names)
    grouper = Grouper(by, keep_ids=keep_ids).add_all(
        backend.stream(ResultQuery(statuses=states, task_globs=task_globs, since=cutoff)))
    groups = grouper.sorted()
    total = sum(g.count for g in groups)
    shown = groups if limit is None else groups[:limit]
    app.emit(shown, "failure-group")
    if app.fmt == "table":
        from celerytool.render import note

        what = "failures" if not revoked else "failed or revoked results"
        if not groups:
            note(f"no {what}" + (f" within {_since_text(since)}" if since is not None else ""))
        else:
            more = f" (the {len(shown)} most frequent shown)" if len(shown) < len(groups) else ""
            note(f"{total} {what} in {len(groups)} group{'s' if len(groups) != 1 else ''}{more}")
    return 1 if groups else 0


def _since_text(seconds: float) -> str:
    s = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"
