"""celerytool result: show task results, optionally wait for them; the exit code is the outcome."""

from __future__ import annotations

import click

from celerytool.cli.options import backend_options, full_ids_option, timeout_option, with_app

EXIT_CODES = """\b
Exit codes (with several ids the worst decides: 1 > 124 > 3 > 0):
  0    SUCCESS
  1    FAILURE or REVOKED
  3    not ready or unknown id (PENDING, STARTED, RETRY, custom states)
  124  --wait reached --timeout
  69   result backend unreachable
  66   database table missing (see --backend-table-names)
  2    usage (e.g. an rpc:// backend, which cannot be read after the fact,
       or a database URL without: pip install 'celerytool[db]')
"""


@click.command("result", epilog=EXIT_CODES)
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--wait", is_flag=True, help="Wait until every task is ready; progress on stderr.")
@timeout_option(None, "With --wait: give up after this long (exit 124).")
@backend_options
@full_ids_option
@with_app
def command(app, ids, wait, timeout, backend_keyprefix, backend_table_names):
    """Show the stored result of each task ID (or group id).

    Reads the result backend (--backend, else the broker when it is Redis):
    Redis, Celery's database backend (db+postgresql://, db+mysql://,
    db+sqlite:///) or django-celery-results (django-db+postgresql://...):
    status, result, traceback, and with result_extended the task name,
    args, kwargs, worker, retries and queue. A stored exception is shown as
    type, module and message. --wait follows state changes live on Redis
    (custom states such as PROGRESS included) and polls a database every
    0.5 s, as Celery does.

    \b
    Examples:
      celerytool result 4f1c2b9e-0f4e-4a7b-9d1a-3f0c1d2e3a4b
      celerytool result "$ID" --wait --timeout 60 && echo done
      celerytool result "$A" "$B" -o json | jq -r '.[].status'
      celerytool result "$ID" --backend 'db+sqlite:///results.sqlite'
    """
    return show_results(app, list(ids), wait=wait, timeout=timeout, keyprefix=backend_keyprefix or "",
                        table_names=backend_table_names)


def show_results(app, ids, *, wait, timeout, keyprefix="", table_names=None, one=False):
    """Read (or wait for) ``ids``, print them, return the exit code.

    JSON is an array, also for one id (the command takes any number); ``one``
    (send --wait: always exactly one task) prints an object.
    """
    from celerytool.backends.outcome import worst_exit_code

    backend = app.open_backend(keyprefix, table_names)
    timed_out = False
    if wait:
        results, timed_out = backend.wait(ids, timeout, on_change=_progress)
        if timed_out:
            from celerytool.render import note

            late = [r.id for r in results if r.status not in ("SUCCESS", "FAILURE", "REVOKED")]
            note(f"timed out after {timeout:g} s waiting for {', '.join(late)}")
    else:
        results = backend.get_many(ids)
    if len(results) == 1 and (one or app.fmt == "table"):  # one id, for people: every field and the traceback
        app.emit_one(results[0], "result")
    else:
        app.emit(results, "result")
    return int(worst_exit_code(results, timed_out))


def _progress(result):
    from celerytool.jsontext import short_repr
    from celerytool.render import note

    detail = ""
    if result.exception:
        detail = f" {result.exception.get('type')}: {result.exception.get('message')}"
    elif result.result is not None and result.status != "SUCCESS":
        detail = " " + short_repr(result.result, 120)
    note(f"{result.id}: {result.status}{detail}")
