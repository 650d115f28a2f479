"""celerytool doctor: what uses a Celery Redis database, what is wrong, and the fix for each."""

from __future__ import annotations

import click

from celerytool.cli.options import Duration, with_app
from celerytool.housekeeping.fixes import FIXES as FIX_NAMES


@click.command("doctor")
@click.option("--fix", "fix", multiple=True, metavar="NAME",
              help=f"Apply the fix of these findings (repeatable or comma-separated; all for every one): "
                   f"{', '.join(FIX_NAMES)}.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before a fix (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="With --fix: say what it would change; change nothing.")
@click.option("--ttl", type=Duration(0.001), metavar="DURATION",
              help="TTL for --fix results-without-ttl (Celery's result_expires default is 1d).")
@click.option("--idle", type=Duration(), default="60s", show_default=True, metavar="DURATION",
              help="A reply list untouched this long has no reader.")
@click.option("--visibility-timeout", type=Duration(1), default="1h", show_default=True, metavar="DURATION",
              help="kombu's visibility_timeout: unacked entries older than this are stale.")
@click.option("--sample", type=click.IntRange(min=1), default=1000, show_default=True, metavar="N",
              help="MEMORY USAGE is asked for N keys per class; larger classes are estimated.")
@click.option("--ping-timeout", type=Duration(0.1), default="1s", show_default=True, metavar="DURATION",
              help="How long each of two pings waits for the workers bound to the control exchange.")
@click.option("--backend-keyprefix", metavar="PREFIX",
              help="result_backend_transport_options global_keyprefix of the app.")
@with_app
def command(app, fix, yes, dry_run, ttl, idle, visibility_timeout, sample, ping_timeout, backend_keyprefix):
    """Census of a Celery Redis database, findings, and the fix for each.

    One SCAN pass (never KEYS) classifies every key: queues and their
    priority lists, bindings, unacked / unacked_index / unacked_mutex, task
    and group results, chord counters, remote-control reply lists, event
    queues, and keys that are not Celery's. Per class: count, memory
    (MEMORY USAGE, measured on --sample keys and estimated beyond), TTL
    spread, oldest date_done of results. Then the findings, each with the
    command that fixes it. Exit 0 when nothing is found, 1 when something
    is: ready for monitoring.

    \b
    Examples:
      celerytool doctor -b redis://localhost:6379/0
      celerytool doctor -o json | jq '.findings[].finding'
      celerytool doctor --fix reply-lists --dry-run
      celerytool doctor --fix results-without-ttl --ttl 1d --yes
      celerytool doctor --fix reply-lists,stuck-mutex --yes
      celerytool doctor --fix all --ttl 1d --dry-run
    """
    broker = app.open_broker()
    if not broker.capabilities.keyspace:
        from celerytool.errors import UsageError

        raise UsageError(f"doctor walks a Redis database (broker and/or result backend); "
                         f"{broker.capabilities.name} is not one")
    if fix:
        names = _fix_names(fix, ttl)
        silent = _silent(app, ping_timeout)
        codes = [_fix(app, broker, name, yes, dry_run, ttl, idle, visibility_timeout, backend_keyprefix,
                      several=len(names) > 1, silent=silent) for name in names]
        return max(codes)
    from celerytool.housekeeping.doctor import Doctor
    from celerytool.render.progress import progress

    total = None
    if app.stderr_is_tty():
        with broker.read_errors():
            total = int(broker.reader.execute("DBSIZE"))
    doctor = Doctor(broker, result_prefix=backend_keyprefix or "", sample=sample, idle=idle,
                    visibility_timeout=visibility_timeout, silent=_silent(app, ping_timeout))
    with progress(total, "scanning") as bar:
        doctor.tick = bar.advance
        report = doctor.scan()
    from celerytool.render import note

    for text in doctor.notes:
        note(text)
    if app.fmt == "table":
        from celerytool.render.doctor import render_report

        render_report(report)
    else:
        app.emit_one(report, "doctor")
    return 1 if report.findings else 0


def _fix_names(given, ttl):
    """--fix values -> the fixes to apply, in the documented order, each once."""
    from celerytool.errors import UsageError
    from celerytool.render import note

    wanted = {n.strip().lower() for item in given for n in item.split(",") if n.strip()}
    unknown = wanted - set(FIX_NAMES) - {"all"}
    if unknown:
        raise UsageError(f"no fix named {', '.join(sorted(unknown))} (fixes: {', '.join(FIX_NAMES)}, or all)")
    if "all" in wanted:
        wanted = set(FIX_NAMES)
        if ttl is None:
            wanted.discard("results-without-ttl")
            note("--fix all: results-without-ttl needs --ttl, so it is left out")
    # the stuck lock first: requeueing stale unacked entries takes it, as kombu does
    order = ["stuck-mutex", *(n for n in FIX_NAMES if n != "stuck-mutex")]
    return [n for n in order if n in wanted]


def _silent(app, ping_timeout):
    """Workers bound to the control exchange that answer neither of two pings (asked when needed)."""
    def ask():
        from celerytool.cli.live import open_session
        from celerytool.control.inspect import silent_after_pings

        return silent_after_pings(open_session(app), ping_timeout)
    return ask


def _fix(app, broker, name, yes, dry_run, ttl, idle, visibility_timeout, backend_keyprefix, several=False,
         silent=None):
    from celerytool.cli.guard import confirm, running
    from celerytool.housekeeping.fixes import apply_fix
    from celerytool.render import note

    if not dry_run:
        confirm(yes, f"Apply fix {name!r} on {app.broker_url.redacted()}?")
    with running(app, f"fixing {name}", None, dry_run=dry_run) as control:
        done = apply_fix(name, broker, dry_run=dry_run, idle=idle, visibility_timeout=visibility_timeout,
                         ttl=ttl, result_prefix=backend_keyprefix or "", control=control, silent=silent)
    if app.fmt != "table":
        app.emit_one({"fix": name, **done} if several else done, "fix")
    if "expiry_set" in done or "would_set" in done:  # results-without-ttl: expire's own words
        from celerytool.selection import format_duration

        count = done.get("would_set", 0) if dry_run else done["expiry_set"]
        words = (f"{'would set' if dry_run else 'set'} a TTL of {format_duration(float(done['ttl']))} on {count} "
                 f"result(s) without one, of {done.get('examined', 0)} examined")
    else:
        words = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in done.items()
                          if isinstance(v, (int, float)) and not isinstance(v, bool))
    note(f"{'would apply' if dry_run else 'applied'} {name}: {words or 'nothing to do'}")
    return 130 if done.get("interrupted") else 0
