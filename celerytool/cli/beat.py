"""celerytool beat: the periodic tasks of a beat scheduler's store; run, enable or disable one."""

from __future__ import annotations

import click

from celerytool.cli.options import dry_run_option, with_app, yes_option

ACTIONS = ("list", "run", "enable", "disable")


@click.command("beat")
@click.argument("action", required=False, default="list", type=click.Choice(ACTIONS), metavar="[list|run|enable|disable]")
@click.argument("name", required=False)
@click.option("--store", metavar="URL|FILE",
              help="Where the schedule is: redis://... (RedBeat), django-db+URL or db+URL "
                   "(django-celery-beat's tables), or a celerybeat-schedule file [default: RedBeat on "
                   "the -b broker when it is Redis, else ./celerybeat-schedule].")
@click.option("--redbeat-prefix", default="redbeat:", show_default=True, metavar="PREFIX",
              help="RedBeat's redbeat_key_prefix.")
@click.option("--timezone", "timezone", metavar="TZ",
              help="The beat app's timezone, for RedBeat's crontab entries (they carry none) [default: UTC].")
@yes_option()
@dry_run_option("run: print the message that would be sent; enable/disable: change nothing.")
@with_app
def command(app, action, name, store, redbeat_prefix, timezone, yes, dry_run):
    """List the periodic tasks of a beat schedule; `run`, `enable` or `disable` one by NAME.

    For each entry: name, task, the schedule in words (every 30s, crontab
    0 */2 * * * (Europe/Paris), solar sunrise 48.85,2.35, clocked
    2026-12-24T18:00Z), args/kwargs, options (queue, ...), enabled, last run,
    total runs and the next due time, computed with Celery's own schedule
    classes (the app is never imported). The beat file is read with the
    inert unpickler: nothing in it runs. `run NAME` sends the entry now, as
    `send` would (confirm / --yes / --dry-run). `enable`/`disable NAME` on
    RedBeat (a running beat sees it on its next tick) and django-celery-beat
    (last_update is bumped so a running beat reloads); the beat file is
    read-only (exit 2).

    \b
    Examples:
      celerytool beat -b redis://cache:6379/0
      celerytool beat --store django-db+postgresql://app@db/app -o json
      celerytool beat --store /var/lib/beat/celerybeat-schedule
      celerytool beat disable nightly-report --store redis://cache:6379/0 --yes
      celerytool beat run nightly-report --store redis://cache:6379/0 -b amqp://rabbit// --yes
    """
    from celerytool.beat import open_store
    from celerytool.errors import UsageError
    from celerytool.render import note

    if action == "list" and name is not None:
        raise UsageError(f"unknown action {name!r}? `beat` lists; `beat run|enable|disable NAME` acts on one")
    if action != "list" and not name:
        raise UsageError(f"beat {action} takes the NAME of an entry")
    spec = store or _default_store(app)
    beat_store = open_store(spec, connect_timeout=app.connect_timeout or 5.0, redbeat_prefix=redbeat_prefix,
                            limits=app.limits, timezone=timezone)  # limits: asked for a beat file only
    app.track(beat_store)
    if action == "list":
        count = app.emit(beat_store.entries(), "beat")  # written as they are made
        if app.fmt == "table":
            note(f"{count} entr{'y' if count == 1 else 'ies'} in {beat_store.describe()}")
        return 0
    entries = {e.name: e for e in beat_store.entries()}
    if name not in entries:
        from celerytool.errors import NotFound

        raise NotFound(f"no entry {name!r} in {beat_store.describe()} (`celerytool beat` lists them)")
    entry = entries[name]
    if action == "run":
        return _run(app, entry, yes, dry_run)
    from celerytool.cli.guard import confirm

    enabled = action == "enable"
    if dry_run:
        note(f"would {action} {name!r} in {beat_store.describe()} (now {'enabled' if entry.enabled else 'disabled'})")
        return 0
    confirm(yes, f"{action.capitalize()} {name!r} in {beat_store.describe()}?")
    beat_store.set_enabled(name, enabled)
    note(f"{name!r} {action}d in {beat_store.describe()}")
    return 0


def _default_store(app):
    import os

    url = app.broker_url
    if url is not None and url.kind == "redis":
        return url.raw
    if os.path.exists("celerybeat-schedule") or os.path.exists("celerybeat-schedule.db") or \
            os.path.exists("celerybeat-schedule.dat"):
        return "celerybeat-schedule"
    from celerytool.errors import UsageError

    raise UsageError("give --store: a redis:// URL (RedBeat), django-db+URL (django-celery-beat) or the path of "
                     "a celerybeat-schedule file")


def _run(app, entry, yes, dry_run):
    """Send the entry now through the send pipeline, with its args, kwargs and options."""
    from celerytool.cli.guard import confirm
    from celerytool.cli.send import pipeline, send_one

    if entry.task is None:
        from celerytool.errors import DataError

        raise DataError(f"entry {entry.name!r} names no task")
    opts = entry.options
    options = {k: opts[k] for k in ("queue", "exchange", "routing_key", "priority", "expires") if opts.get(k) is not None}
    if isinstance(options.get("exchange"), dict):
        options["exchange"] = options["exchange"].get("name")
    if not dry_run:
        confirm(yes, f"Send {entry.task} now (beat entry {entry.name!r})?")
    pipe = pipeline(app)
    defaults = pipe.defaults(options, ())
    args = entry.args if isinstance(entry.args, (list, tuple)) else []
    kwargs = entry.kwargs if isinstance(entry.kwargs, dict) else {}
    from dataclasses import replace

    spec = replace(defaults, name=entry.task, args=tuple(args), kwargs=dict(kwargs))
    pipe.check(spec)
    return send_one(app, pipe, spec, dry_run=dry_run)
