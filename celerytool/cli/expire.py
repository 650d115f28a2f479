"""celerytool expire: set a TTL on stored results (Celery's result_expires, after the fact)."""

from __future__ import annotations

import click

from celerytool.cli.options import Duration, with_app
from celerytool.cli.result_selection import open_store, result_selection


@click.command("expire")
@click.option("--ttl", type=Duration(0.001), required=True, metavar="DURATION",
              help="Time to live from now: 90s, 15m, 1h30m, 2d.")
@click.option("--only-without-ttl", is_flag=True, help="Leave results that already have a TTL as they are.")
@result_selection
@with_app
def command(app, ttl, only_without_ttl, criteria, every, backend_keyprefix, backend_table_names, yes,
            dry_run):
    """Give stored results a TTL, the fix for results stored without one.

    Results written with result_expires=None (or by workers whose setting
    was lost) stay in Redis until deleted. This sets their TTL in batches,
    without restarting any worker. Same selection as forget.

    \b
    Examples:
      celerytool expire --ttl 1d --only-without-ttl --all --yes
      celerytool expire --ttl 1h --status SUCCESS --dry-run
      celerytool expire --ttl 7d --task 'reports.*' -y -o json
    """
    from celerytool.cli.guard import confirm, finish, running

    store = open_store(app, backend_keyprefix, backend_table_names)
    what = criteria.describe() + (" without a TTL" if only_without_ttl else "")
    if not dry_run:
        confirm(yes, f"Set a TTL of {ttl:g}s on {what} in {app.backend_url.redacted()}?")
    with running(app, "expiring", None, dry_run=dry_run) as control:
        result = store.expire(criteria, ttl, only_without_ttl=only_without_ttl, control=control)
    if dry_run:
        n = result.extra.get("would_set", result.matched) if only_without_ttl else result.matched
        summary = f"would set a TTL of {ttl:g}s on {n} of {result.examined} result(s) examined ({what})"
    else:
        summary = f"set a TTL of {ttl:g}s on {result.done} result(s) of {result.examined} examined ({what})"
    return finish(app, result, summary)
