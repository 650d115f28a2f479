"""celerytool pool: grow, shrink, autoscale or restart the workers' pools."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app
from celerytool.cli.steering import steering_options

ACTIONS = ("grow", "shrink", "autoscale", "restart")


@click.command("pool")
@click.argument("action", type=click.Choice(ACTIONS))
@click.argument("numbers", nargs=-1, type=click.IntRange(min=0), metavar="[N | MAX [MIN]]")
@steering_options
@with_app
def command(app, action, numbers, destination, timeout, yes, dry_run):
    """Change the workers' pools: grow|shrink [N] (default 1), autoscale MAX
    [MIN], restart.

    grow/shrink add or remove N pool processes; Celery 5.7 refuses them on a
    worker run with --autoscale (its answer is reported: change the range
    with `pool autoscale` there). autoscale sets the autoscaler's range (the
    worker must run with --autoscale); raising MIN starts processes at once.
    restart replaces the pool processes and makes changed time limits apply
    (see time-limit); the worker must run with worker_pool_restarts=True,
    and one without it answers "Pool restarts not enabled", reported as an
    error. Exit 0 when every addressed worker said ok, 1 when any answered
    with an error or not at all, 69 when none answered.

    \b
    Examples:
      celerytool pool grow 2 -d celery@batch1 --yes
      celerytool pool shrink --yes
      celerytool pool autoscale 10 2 --yes
      celerytool pool restart -d celery@batch1 --yes
    """
    from celerytool.cli.steering import run_steer
    from celerytool.errors import UsageError

    if action in ("grow", "shrink"):
        if len(numbers) > 1 or (numbers and numbers[0] < 1):
            raise UsageError(f"pool {action} takes one N >= 1 (default 1)")
        n = numbers[0] if numbers else 1
        return run_steer(app, f"pool_{action}", {"n": n}, f"{action} the pool by {n}", destination, timeout,
                         yes, dry_run)
    if action == "autoscale":
        if not 1 <= len(numbers) <= 2 or numbers[0] < 1:
            raise UsageError("pool autoscale takes MAX >= 1 and an optional MIN")
        maximum, minimum = numbers[0], (numbers[1] if len(numbers) > 1 else 0)
        if minimum > maximum:
            raise UsageError("MIN must not exceed MAX")
        return run_steer(app, "autoscale", {"max": maximum, "min": minimum},
                         f"autoscale between {minimum} and {maximum}", destination, timeout, yes, dry_run)
    if numbers:
        raise UsageError("pool restart takes no number")
    return run_steer(app, "pool_restart", {"reload": False}, "restart the pool", destination, timeout, yes,
                     dry_run, after="the workers restart their pool processes in the background")
