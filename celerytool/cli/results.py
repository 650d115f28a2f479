"""celerytool results: list stored task results, newest first, filtered (SCAN, never KEYS)."""

from __future__ import annotations

import click

from celerytool.cli.options import with_app

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration(text):
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _UNITS else "s"
    number = value[:-1] if value[-1:] in _UNITS else value
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"expected a duration such as 90s, 15m, 1h or 2d, not {text!r}") from None
    if seconds < 0:
        raise click.BadParameter("duration must not be negative")
    return seconds


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return _duration(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


@click.command("results")
@click.option("--status", "statuses", multiple=True, metavar="S",
              help="Only these states (repeatable or comma-separated), e.g. FAILURE.")
@click.option("--task", "task_glob", metavar="GLOB", help="Only task names matching GLOB (needs result_extended).")
@click.option("--since", type=Duration(), metavar="DURATION", help="Only results done within e.g. 90s, 15m, 1h, 2d.")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N results.")
@click.option("--backend-keyprefix", metavar="PREFIX",
              help="result_backend_transport_options global_keyprefix of the app.")
@with_app
def command(app, statuses, task_glob, since, limit, backend_keyprefix):
    """List the results the backend holds, newest first.

    Walks the keys with SCAN (never KEYS), so it is safe on a busy Redis;
    only the newest N are kept in memory. Results not yet done (no date)
    come last.

    \b
    Examples:
      celerytool results --status FAILURE --since 1h
      celerytool results --task 'billing.*' -n 10 -o json | jq -r '.[].id'
    """
    import datetime as dt
    import fnmatch
    import heapq

    from celerytool.backends import open_backend

    wanted = {s.strip().upper() for item in statuses for s in item.split(",") if s.strip()}
    backend = open_backend(app.backend_url, keyprefix=backend_keyprefix or "", limits=app.limits(),
                           connect_timeout=app.connect_timeout or 5.0)
    app.track(backend)
    cutoff = None if since is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
    floor = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def done_at(r):
        if not r.date_done:
            return None
        try:
            value = dt.datetime.fromisoformat(r.date_done)
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    def selected():
        for r in backend.scan():
            if wanted and r.status not in wanted:
                continue
            if task_glob and not (r.name and fnmatch.fnmatchcase(r.name, task_glob)):
                continue
            when = done_at(r)
            if cutoff is not None and (when is None or when < cutoff):
                continue
            yield (when or floor), r

    newest = heapq.nlargest(limit, selected(), key=lambda pair: pair[0])
    count = app.emit((r for _, r in newest), "result")
    if count == 0 and app.fmt == "table":
        from celerytool.render import note

        note("no matching results")
