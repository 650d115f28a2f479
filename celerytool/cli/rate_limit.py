"""celerytool rate-limit: set (or lift) a task type's rate limit on workers."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app
from celerytool.cli.steering import steering_options

RATE_HELP = "10/s, 100/m, 1000/h, a bare number per second; 0 lifts the limit"


@click.command("rate-limit")
@click.argument("task")
@click.argument("rate")
@steering_options
@with_app
def command(app, task, rate, destination, timeout, yes, dry_run):
    """Set the rate limit of TASK on workers (RATE: 10/s, 100/m, 1000/h; 0 lifts it).

    Every worker that answers a ping is asked, or only those given with
    -d/--destination. Each worker's answer is reported: exit 0 when every
    one said ok, 1 when any answered with an error (e.g. unknown task) or
    did not answer, 69 when none answered. The limit applies to the next
    tasks the worker starts, and lives in worker memory (a restarted worker
    has the task's own limit again).

    \b
    Examples:
      celerytool rate-limit tasks.send_email 10/m --yes
      celerytool rate-limit tasks.send_email 0 -d celery@web1 --yes   # lift it on one worker
      celerytool rate-limit tasks.resize 2/s --dry-run
    """
    from celerytool.cli.steering import run_steer

    limit = _rate(rate)
    what = f"lift the rate limit of {task}" if limit is None else f"rate-limit {task} to {rate}"
    return run_steer(app, "rate_limit", {"task_name": task, "rate_limit": limit}, what, destination, timeout,
                     yes, dry_run, after="applies to the tasks the worker starts next; lost on a worker restart")


def _rate(text):
    """``10/s`` -> ``10/s``; ``0`` -> None (lift); anything else: usage error."""
    import re

    from celerytool.errors import UsageError

    value = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:/([smh]))?", value)
    if not m:
        raise UsageError(f"bad rate {text!r} ({RATE_HELP})")
    if float(m.group(1)) == 0:
        return None
    return value
