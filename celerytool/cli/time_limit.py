"""celerytool time-limit: change a task type's soft/hard time limits on workers."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app
from celerytool.cli.steering import steering_options

APPLIES = ("inspect registered shows the new limits at once, but Celery 5.7 hands a task's limits to the pool "
           "from a request class built when the worker's consumer starts: they are enforced from the next "
           "`celerytool pool restart` (workers run with worker_pool_restarts) or the next broker "
           "reconnection; a worker restart forgets them (the task's own limits again). A solo or threads "
           "pool enforces no time limits at all")


@click.command("time-limit")
@click.argument("task")
@click.option("--soft", type=click.FloatRange(min=0), required=True, metavar="SECONDS",
              help="Soft time limit (SoftTimeLimitExceeded is raised in the task); 0 removes it.")
@click.option("--hard", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Hard time limit (the process running the task is killed); 0 removes it.")
@steering_options
@with_app
def command(app, task, soft, hard, destination, timeout, yes, dry_run):
    """Set the soft (and hard) time limit of TASK on workers.

    Every worker that answers a ping is asked, or only those given with
    -d/--destination; exit 0 when every one said ok, 1 when any answered
    with an error (e.g. unknown task) or did not answer, 69 when none
    answered. `inspect registered` shows the new limits at once, but a
    Celery 5.7 worker enforces them only after `celerytool pool restart`
    (worker run with worker_pool_restarts) or a reconnection to the broker:
    its pool gets the limits from a request class built when the consumer
    starts. A restarted worker forgets them. --soft alone also clears the
    hard limit (Celery sets both).

    \b
    Examples:
      celerytool time-limit tasks.export --soft 60 --hard 90 --yes
      celerytool time-limit tasks.export --soft 60 -d celery@batch1 --dry-run
    """
    from celerytool.cli.steering import run_steer
    from celerytool.errors import UsageError

    if hard is not None and hard and soft and hard < soft:
        raise UsageError("--hard must not be less than --soft")
    what = f"set the time limits of {task} to soft {soft:g} s" + (f", hard {hard:g} s" if hard is not None else "")
    return run_steer(app, "time_limit", {"task_name": task, "soft": soft or None, "hard": hard or None},
                     what, destination, timeout, yes, dry_run, after=APPLIES)
