"""celerytool queues: every queue with its depth."""

from __future__ import annotations

from typing import Any

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import Duration, internal_option, with_app

AUTO_DELAYED_MAX = 5_000  # Redis: in-flight entries read by default (about 0.1 s)


@click.command("queues")
@click.argument("names", nargs=-1, metavar="[QUEUE]...", shell_complete=complete_queues)
@internal_option("Include Celery's own remote-control (*.pidbox) and event (celeryev.*) queues.")
@click.option("--exact/--sampled", "exact", default=None,
              help="RabbitMQ: count ready messages and consumers now, by passive declare (one round trip "
                   "a queue), or take the management API's last statistics sample (up to ~5 s old) "
                   "[default: exact for at most 50 queues].")
@click.option("--scan/--no-scan", default=None,
              help="Also find queues that hold messages but have no binding, by scanning for list "
                   "keys [default: only when the database has at most 200,000 keys].")
@click.option("--delayed/--no-delayed", "count_delayed", default=None,
              help="Count, per destination queue, the tasks waiting for their ETA (`celerytool delayed`): "
                   f"Redis: kombu's unacked hash [default: when it holds at most {AUTO_DELAYED_MAX:,} "
                   "entries]; RabbitMQ: the delayed-delivery levels, read as peek reads them (each read "
                   "spends a delivery attempt of a quorum level) [default: only when asked].")
@click.option("--visibility-timeout", type=Duration(1), default="1h", show_default=True, metavar="DURATION",
              help="With --delayed: the workers' Redis visibility_timeout, as in `delayed`.")
@with_app
def command(app, names, include_internal, exact, scan, count_delayed, visibility_timeout):
    """List queues with their depth.

    With QUEUE names, only those (known or not: an unknown one shows 0 and
    exists false). On Redis, queues are found from kombu's _kombu.binding.*
    sets (an empty queue has no list key) and from list keys (see --scan);
    the depth sums the priority
    sub-lists, shown per priority bucket. On RabbitMQ the management API
    lists them with ready, unacked and consumer counts.

    \b
    Examples:
      celerytool queues
      celerytool queues -b redis://:pw@cache:6379/1 -o json | jq '.[] | select(.messages > 0)'
      celerytool queues critical reports   # only these two, even if unknown
      celerytool queues --delayed          # and how many ETA tasks wait for each
    """
    broker = app.open_broker(include_internal=include_internal)
    infos = broker.queues(names, scan=scan, exact=exact)
    if names:  # only the queues named, in the order given (each once), known or not
        by_name = {q.name: q for q in infos}
        infos = [by_name[n] for n in dict.fromkeys(names) if n in by_name]
    if count_delayed is None:  # Redis: a read of kombu's unacked hash, when it is small
        infos = _auto_delayed(broker, infos, visibility_timeout, only_listed=bool(names))
    elif count_delayed:
        infos = with_delayed(broker, infos, visibility_timeout, only_listed=bool(names))
    app.emit(infos, "queue")
    waiting = getattr(broker, "delayed_waiting", 0)
    if waiting and not count_delayed:
        from celerytool.render import note

        note(f"{waiting} task(s) wait in Celery's delayed-delivery queues: `queues --delayed` counts them "
             "by destination, `celerytool delayed` lists them")
    sampled = sum(q.counted == "sample" for q in infos)
    if sampled and app.fmt == "table":
        from celerytool.render import note

        note(f"counts of {sampled} queue(s) are the management API's last statistics sample, which "
             "RabbitMQ takes every 5 s by default (so up to ~5 s old); --exact counts them now")
    if not infos and app.fmt == "table":
        from celerytool.render import note

        note("no queues found (name one to check it: celerytool queues NAME)")


def _auto_delayed(broker: Any, infos: list[Any], visibility_timeout: float, only_listed: bool) -> list[Any]:
    """The delayed counts when they are cheap to read (Redis, a small unacked hash); the listing
    stands without them when they cannot be read (an ACL user without HLEN, say)."""
    from celerytool.errors import CeleryToolError
    from celerytool.render import note

    in_flight = getattr(broker.ops(), "in_flight_count", None)
    if in_flight is None:
        return infos
    try:
        if in_flight() > AUTO_DELAYED_MAX:
            return infos
        return with_delayed(broker, infos, visibility_timeout, only_listed)
    except CeleryToolError as exc:
        note(f"tasks waiting for their ETA not counted: {exc.message}")
        return infos


def with_delayed(broker: Any, infos: list[Any], visibility_timeout: float,
                 only_listed: bool = False) -> list[Any]:
    """Each queue with the number of tasks bound for it that wait for their ETA (a walk);
    ``only_listed`` (queues named on the command line): no row for another destination."""
    from dataclasses import replace

    from celerytool.model import QueueInfo
    from celerytool.selection import Selection

    counts: dict[str, int] = {}
    for task in broker.ops().delayed(None, Selection(), visibility_timeout):
        if task.queue is not None:
            counts[task.queue] = counts.get(task.queue, 0) + 1
    out = [replace(q, delayed=counts.pop(q.name, 0)) for q in infos]
    if only_listed:
        return out
    # a destination that is not listed (no binding or list yet): shown, so no task is hidden
    out += [QueueInfo(name=n, messages=0, exists=False, delayed=c) for n, c in sorted(counts.items())]
    return out
