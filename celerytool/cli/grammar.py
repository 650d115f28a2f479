"""The option grammar: what each shared long option name means, and the table of every option.

``GRAMMAR`` holds the option names that more than one command uses (or that the grammar
reserves): their short flag, the kind of value and its range, and their one meaning.
``option_rows()`` reads every option of every command from the click app; tests/test_grammar.py
fails when a command spells a shared name differently, and docs/commands.md shows the table.
To add an option that another command already has, use the decorator in cli/options.py; to share
a new name between commands, add it here first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import click


@dataclass(frozen=True)
class Spec:
    short: str | None  # the short flag ("-n"), or None
    value: str  # the kind of value, as value_text() writes it
    meaning: str
    also: tuple[str, ...] = ()  # other flags some commands accept too (-Q, Celery's spelling)
    repeatable: bool | None = None  # given several times, every value counts (None: not decided)


TIMEOUT = "DURATION (50ms .. 1d)"
GRAMMAR: dict[str, Spec] = {
    "--output": Spec("-o", "table|json|ndjson", "the output format (data on stdout; words on stderr)"),
    "--limit": Spec("-n", "N (>= 1)", "at most N: messages, results, events"),
    "--queue": Spec("-q", "QUEUE", "the queue the command works on or filters by", also=("-Q",)),
    "--timeout": Spec("-t", TIMEOUT, "give up waiting after this long"),
    "--destination": Spec("-d", "WORKER", "only this worker (name@host); repeatable", repeatable=True),
    "--yes": Spec("-y", "flag", "do not ask (required to change anything when not on a terminal)"),
    "--dry-run": Spec(None, "flag", "say what would change; change nothing"),
    "--all": Spec(None, "flag", "every message / every stored result"),
    "--internal": Spec(None, "flag", "include Celery's own plumbing (pidbox, celeryev.* queues)"),
    "--task": Spec(None, "GLOB", "task name, shell glob (tasks.*)", repeatable=True),
    "--id": Spec(None, "ID", "a task id", repeatable=True),
    "--where": Spec(None, "EXPR", "an expression on decoded fields (celerytool help selection)"),
    "--older-than": Spec(None, "DURATION (>= 0s)", "only what is older than this: delivery (unacked), date_done (results)"),
    "--status": Spec(None, "S", "only results in these states; repeatable or comma-separated", repeatable=True),
    "--from": Spec(None, "FILE|-", "read input (ids, or tasks for send) from FILE or stdin"),
    "--full-ids": Spec(None, "flag", "tables: whole task ids"),
    "--backend-keyprefix": Spec(None, "PREFIX", "the result backend's global_keyprefix"),
    "--backend-table-names": Spec(None, "task=T,group=G", "database_table_names of a db+ backend"),
    "--ttl": Spec(None, "DURATION (>= 1ms)", "a time to live for stored results"),
    "--visibility-timeout": Spec(None, "DURATION (>= 1s)", "the workers' kombu visibility_timeout"),
    "--delayed": Spec(None, "flag", "count the tasks that wait for their ETA (reads them, as `delayed` does)"),
    "--compression": Spec(None, "[zlib|gzip|bzip2|lzma|brotli|zstd]", "a kombu compression"),
    "--exchange": Spec("-e", "NAME", "an exchange"),
    "--enable": Spec(None, "flag", "ask workers to send task events first"),
    "--keep-routing": Spec(None, "flag", "keep delivery_info as it is"),
    "--wait": Spec(None, "flag", "wait for the results; exit as result --wait does"),
    "--since": Spec(None, "DURATION (>= 0s)", "only results done within this long"),
    "--by": Spec(None, "FIELD", "group by this field (several: comma-separated, where allowed)"),
    "--countdown": Spec(None, "DURATION (>= 0s)", "run the task no earlier than this long from now"),
    "--eta": Spec(None, "DATETIME", "run the task no earlier than this ISO 8601 time"),
    "--expires": Spec(None, "DURATION|DATETIME", "revoke the task if not started within this long or by this time"),
    "--scan/--no-scan": Spec(None, "flag", "Redis: also find queues that have messages but no binding"),
    "--exact/--sampled": Spec(None, "flag", "RabbitMQ: count by passive declare, or take the management API's sample"),
    "--priority": Spec(None, "N (>= 0 and <= 255)", "the message priority (0-9 on Redis, 0-255 on RabbitMQ)"),
}

# Not repeatable where the grammar says repeatable (given twice, the last value wins): send names
# the one id it gives the task it sends.
NOT_REPEATABLE_YET: frozenset[tuple[str, str]] = frozenset({
    ("send", "--id"),
})

# Hidden old spellings, accepted for one release: (command, flag) -> the option that replaces it.
ALIASES: dict[tuple[str, str], str] = {
    ("queues", "--all"): "--internal",
    ("bindings", "--all"): "--internal",
    ("events", "--count"): "--limit",
}
# Hidden options that exist only to explain that a spelling is gone.
REMOVED: dict[tuple[str, str], str] = {
    ("export", "--output"): "--file",
}


@dataclass(frozen=True)
class Row:
    command: str
    long: str  # the first long flag ("--limit"); "--scan/--no-scan" for a pair
    shorts: tuple[str, ...]
    value: str
    repeatable: bool
    hidden: bool
    help: str


def value_text(param: click.Option) -> str:
    """The kind of value an option takes, with its range: what must agree between commands."""
    from celerytool.cli.options import Compression, Converted, Duration

    t = param.type
    if param.is_flag:
        return "flag"
    if isinstance(t, Duration):
        if t.maximum is not None:
            return f"DURATION ({_d(t.minimum)} .. {_d(t.maximum)})"
        return f"DURATION (>= {_d(t.minimum)})"
    if isinstance(t, click.IntRange):
        low = "" if t.min is None else f">= {t.min}"
        high = "" if t.max is None else f"<= {t.max}"
        bounds = " and ".join(b for b in (low, high) if b)
        return f"{param.metavar or 'N'}" + (f" ({bounds})" if bounds else "")
    if isinstance(t, click.FloatRange):
        return f"NUMBER ({t.min} .. {t.max})"
    if isinstance(t, click.Choice):  # a metavar names the kind (S: a state) where choices differ
        return param.metavar or "|".join(str(c) for c in t.choices)
    if isinstance(t, Compression):
        return t.get_metavar(param)
    if isinstance(t, Converted):
        return param.metavar or t.name.upper()
    if isinstance(t, click.File):
        return param.metavar or "FILE"
    return param.metavar or t.name.upper()


def _d(seconds: float) -> str:
    from celerytool.selection import format_duration

    return format_duration(seconds)


def commands() -> Iterator[tuple[str, click.Command]]:
    """Every command of the app, in the order of the lazy table."""
    from celerytool.cli import COMMANDS, cli

    ctx = click.Context(cli, info_name="celerytool")
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        yield name, cmd


def option_rows(include_shared: bool = False) -> list[Row]:
    """One row per option per command (the connection options only with ``include_shared``)."""
    from celerytool.cli.options import ConnectionOption

    rows = []
    for name, cmd in commands():
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.name == "help":
                continue
            if isinstance(p, ConnectionOption) and not include_shared:
                continue
            flags = list(p.opts) + list(p.secondary_opts)
            longs = [f for f in p.opts if f.startswith("--")]
            long = "/".join([longs[0], *[f for f in p.secondary_opts if f.startswith("--")]]) if longs else flags[0]
            shorts = tuple(f for f in flags if not f.startswith("--"))
            rows.append(Row(name, long, shorts, value_text(p), bool(p.multiple), bool(p.hidden),
                            " ".join((p.help or "").split())))
    return rows
