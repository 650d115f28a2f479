"""``@selection_options()``: the shared --task/--id/--where/--older-than/--limit options.

The decorated command receives one ``selection`` argument, a
``celerytool.selection.Selection``; a --where that does not parse is a usage
error (exit 2) whose message points at the spot with a caret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

WHERE_HELP = ("Expression on decoded fields, e.g. \"args[0] > 10 and kwargs.user == 'bob'\" "
              "(==, !=, <, <=, >, >=, and, or, not, parentheses; see README).")


def selection_options(limit: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from celerytool.selection import Selection

            kwargs["selection"] = Selection.build(
                tasks=kwargs.pop("sel_task"), ids=kwargs.pop("sel_id"),
                where=kwargs.pop("sel_where"), older_than=kwargs.pop("sel_older_than"),
                limit=kwargs.pop("sel_limit", None))
            return f(*args, **kwargs)

        opts = [
            click.option("--task", "sel_task", multiple=True, metavar="GLOB",
                         help="Task name, shell glob (tasks.*); repeatable."),
            click.option("--id", "sel_id", multiple=True, metavar="ID", help="Task id; repeatable."),
            click.option("--where", "sel_where", metavar="EXPR", help=WHERE_HELP),
            click.option("--older-than", "sel_older_than", metavar="DURATION",
                         help="Only messages older than this (90s, 15m, 2h, 1d) where an age is known."),
        ]
        if limit:
            opts.append(click.option("--limit", "sel_limit", type=click.IntRange(min=1), metavar="N",
                                     help="At most N selected messages."))
        for opt in reversed(opts):
            wrapper = opt(wrapper)
        return wrapper

    return decorate
