"""``@result_selection()``: which stored results forget / expire act on.

[ID...] --status S --task GLOB --older-than D --from FILE|- ; the command
receives ``criteria`` (a ``backends.criteria.Criteria``) and ``every``
(True when --all was given: the only way to act on every result).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from celerytool.cli.app import App
from celerytool.cli.options import Duration, all_option, backend_options

if TYPE_CHECKING:
    from celerytool.backends.criteria import ResultStore


def result_selection(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from celerytool.backends.criteria import Criteria
        from celerytool.errors import UsageError

        ids = list(kwargs.pop("ids"))
        source = kwargs.pop("from_file")
        if source is not None:
            ids += [line.strip() for line in source if line.strip() and not line.startswith("#")]
            if not ids:  # nothing to act on; the other filters must not widen to every result
                from celerytool.cli.guard import no_ids_in

                return no_ids_in(source, f.__module__.rsplit(".", 1)[-1])  # cli.forget -> forget
        criteria = Criteria.build(ids=ids, statuses=kwargs.pop("statuses"), tasks=kwargs.pop("tasks"),
                                  older_than=kwargs.pop("older_than"))
        if criteria.empty and not kwargs["every"]:
            raise UsageError("say which results: ids, --from, --status, --task, --older-than, "
                             "or --all for every stored result")
        kwargs["criteria"] = criteria
        return f(*args, **kwargs)

    opts: list[Callable[[Any], Any]] = [
        click.argument("ids", nargs=-1, metavar="[ID]..."),
        click.option("--status", "statuses", multiple=True, metavar="S",
                     help="Only these states (repeatable or comma-separated): SUCCESS, FAILURE, ..."),
        click.option("--task", "tasks", multiple=True, metavar="GLOB",
                     help="Only task names matching GLOB (stored with result_extended=True); repeatable."),
        click.option("--older-than", type=Duration(), metavar="DURATION",
                     help="Only results whose date_done is older than this (90s, 15m, 1h30m, 2d)."),
        click.option("--from", "from_file", type=click.File("r"), metavar="FILE|-",
                     help="Task ids, one a line, from FILE or stdin (-)."),
        all_option("Every stored result (when nothing else selects).", dest="every"),
        click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal)."),
        click.option("--dry-run", is_flag=True, help="Count what would change; change nothing."),
    ]
    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return backend_options(wrapper)


def open_store(app: App, keyprefix: str | None, table_names: dict[str, str] | None) -> ResultStore:
    from celerytool.backends import open_backend
    from celerytool.errors import UsageError

    if app.backend_url is not None and app.backend_url.kind == "rpc":
        raise UsageError("rpc:// results are messages, not stored: there is nothing to forget")
    store = open_backend(app.backend_url, keyprefix=keyprefix or "", limits=app.limits(),
                         connect_timeout=app.connect_timeout or 5.0, table_names=table_names, readonly=False)
    app.track(store)
    return store
