"""``@selection_options()``: the shared --task/--id/--where/-n/--limit (and --older-than) options.

The decorated command receives one ``selection`` argument, a
``celerytool.selection.Selection``; a --where that does not parse is a usage
error (exit 2) whose message points at the spot with a caret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from celerytool.cli.options import Duration, limit_option

WHERE_HELP = ("Expression on decoded fields, e.g. \"args[0] > 10 and kwargs.user == 'bob'\" "
              "(==, !=, <, <=, >, >=, and, or, not, parentheses; celerytool help selection).")


def selection_options(limit: bool = True, age: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``age``: offer --older-than (only where an age is known: unacked / requeue, time since delivery;
    a queued message carries no publish time)."""
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from celerytool.selection import Selection

            kwargs["selection"] = Selection.build(
                tasks=kwargs.pop("sel_task"), ids=kwargs.pop("sel_id"),
                where=kwargs.pop("sel_where"), older_than=kwargs.pop("sel_older_than", None),
                limit=kwargs.pop("sel_limit", None))
            return f(*args, **kwargs)

        opts: list[Callable[[Any], Any]] = [
            click.option("--task", "sel_task", multiple=True, metavar="GLOB",
                         help="Task name, shell glob (tasks.*); repeatable."),
            click.option("--id", "sel_id", multiple=True, metavar="ID",
                         help="Task id, whole (tables show its first characters: --full-ids); repeatable."),
            click.option("--where", "sel_where", metavar="EXPR", help=WHERE_HELP),
        ]
        if age:
            opts.append(click.option("--older-than", "sel_older_than", type=Duration(), metavar="DURATION",
                                     help="Only messages delivered longer ago than this (90s, 15m, 1h30m, 2d)."))
        if limit:
            opts.append(limit_option(help="At most N selected messages.", dest="sel_limit"))
        for opt in reversed(opts):
            wrapper = opt(wrapper)
        return wrapper

    return decorate
