"""Options every command shares (the grammar's types and decorators), and ``with_app``, which
hands each command its ``App`` (``cli/app.py``).

The same options are accepted on the root group and on each subcommand;
the subcommand's value wins, then the root's, then the environment.  The
broker is opened lazily, so --help and usage errors never connect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from celerytool.kombu_layout import DEFAULT_SEP_SHOWN

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


from celerytool.cli.app import DEFAULT_BROKER, OUTPUTS, App


def _steps(value: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted({int(x) for x in value.replace(" ", "").split(",") if x != ""}))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not steps or steps[0] != 0 or any(s < 0 or s > 255 for s in steps):
        raise click.BadParameter("priority steps must start at 0, e.g. 0,3,6,9")
    return steps


MAX_SIZE = 1024**4  # --max-size: 1024G, far beyond what a body can be and still be decoded


def _size(value: str) -> int:
    text = value.strip().upper()
    mult = 1
    for suffix, m in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3), ("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if text.endswith(suffix):
            text, mult = text[: -len(suffix)], m
            break
    try:
        size = float(text) * mult
    except ValueError:
        raise click.BadParameter(f"expected a size such as 64M, got {value!r}") from None
    if size != size:  # nan
        raise click.BadParameter(f"expected a size such as 64M, got {value!r}")
    if size > MAX_SIZE:  # inf included
        raise click.BadParameter(f"{value!r} is too large: at most 1024G")
    n = int(size)
    if n <= 0:
        raise click.BadParameter("size must be positive")
    return n


def _separator(value: str) -> str:
    """``--sep`` with backslash escapes (``\\x06\\x16``) turned into characters."""
    if "\\" not in value:
        return value
    try:
        return value.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"bad escape in '{value}': {exc.reason} (e.g. {DEFAULT_SEP_SHOWN})") from None


class Converted(click.ParamType):
    def __init__(self, name: str, fn: Callable[[str], Any]) -> None:
        self.name = name
        self.fn = fn

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.fn(value)
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


# --- the option grammar (issue 17; docs/commands.md has the generated table) ---------------
# One type and one decorator per concept, so the same long name means the same thing, with the
# same short flag and range, in every command.  tests/test_grammar.py checks the whole app.
TIMEOUT_RANGE = (0.05, 86400.0)  # every -t/--timeout: 50ms .. 1d


class Duration(click.ParamType):
    """Every age, interval and timeout: ``90`` (seconds), ``90s``, ``15m``, ``1h30m``, ``2d``, ``1w``,
    ``500ms``; within [minimum, maximum] seconds, and never more than ``selection.MAX_DURATION``
    (1000 years: now minus it is still a date-time).  One grammar (``selection.parse_duration``),
    one wording for a bad value."""

    name = "duration"

    def __init__(self, minimum: float = 0.0, maximum: float | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None:
            return None
        from celerytool.errors import UsageError
        from celerytool.selection import (
            MAX_DURATION,
            MAX_DURATION_SHOWN,
            format_duration,
            parse_duration,
        )

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value))
            except UsageError as exc:
                self.fail(exc.message, param, ctx)
        maximum = MAX_DURATION if self.maximum is None else min(self.maximum, MAX_DURATION)
        if not self.minimum <= seconds <= maximum:  # nan and inf too
            shown = MAX_DURATION_SHOWN if maximum == MAX_DURATION else format_duration(maximum)
            self.fail(f"{value!r} is out of range: from {format_duration(self.minimum)} to {shown}", param, ctx)
        return seconds


class Compression(click.ParamType):
    """A compression by kombu's name or MIME type (zlib, gzip, bzip2, lzma, brotli, zstd, ...)."""

    name = "compression"
    NAMES = ("zlib", "gzip", "bzip2", "lzma", "brotli", "zstd")

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(self.NAMES) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | None:
        from celerytool.codecs.compression import ALIASES

        if value is None or value.strip().lower() in ALIASES:
            return value and value.strip().lower()
        self.fail(f"{value!r} is not a compression: {', '.join(self.NAMES)}", param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in self.NAMES if n.startswith(incomplete)]


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def limit_option(default: int | None = None, help: str = "At most N.", dest: str = "limit") -> Decorator:
    """``-n/--limit N``: at most N (messages, results, events)."""
    return click.option("-n", "--limit", dest, type=click.IntRange(min=1), default=default, metavar="N",
                        show_default=default is not None, help=help)


def timeout_option(default: float | None, help: str) -> Decorator:
    """``-t/--timeout DURATION``: every timeout, one range (50ms .. 1d)."""
    return click.option("-t", "--timeout", type=Duration(*TIMEOUT_RANGE), default=default,
                        show_default=default is not None, help=help)


def queue_option(help: str, celery_spelling: bool = False, **attrs: Any) -> Decorator:
    """``-q/--queue QUEUE`` (also ``-Q``, Celery's own spelling, where Celery users expect it);
    ``attrs``: e.g. ``shell_complete=complete_queues`` (cli/completion.py imports this module)."""
    decls = ("-q", "-Q", "--queue") if celery_spelling else ("-q", "--queue")
    return click.option(*decls, "queue", metavar="QUEUE", help=help, **attrs)


def yes_option(help: str = "Do not ask (required when not on a terminal).") -> Decorator:
    """``-y/--yes``: a changing command goes ahead without asking (cli/guard.py's ``confirm``)."""
    return click.option("-y", "--yes", is_flag=True, help=help)


def dry_run_option(help: str = "Say what would change; change nothing.") -> Decorator:
    """``--dry-run``: a changing command says what it would do and changes nothing."""
    return click.option("--dry-run", is_flag=True, help=help)


def all_option(help: str, dest: str = "all_") -> Decorator:
    """``--all``: every message / every stored result (never "include plumbing": --internal)."""
    return click.option("--all", dest, is_flag=True, help=help)


def internal_option(help: str) -> Decorator:
    """``--internal``: include Celery's own plumbing (pidbox, celeryev, reply queues).

    ``-a/--all`` is its old spelling on queues and bindings, hidden and kept for one release."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if kwargs.pop("legacy_all", False):
                from celerytool.render import warn

                warn("--all is now --internal here (--all means every message or result); "
                     "the old spelling goes away in the next release")
                kwargs["include_internal"] = True
            return f(*args, **kwargs)

        wrapper = click.option("-a", "--all", "legacy_all", is_flag=True, hidden=True,
                               help="Old spelling of --internal.")(wrapper)
        return click.option("--internal", "include_internal", is_flag=True, help=help)(wrapper)

    return decorate


SHARED: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-b", "--broker"), dict(metavar="URL", help=f"Broker URL [env CELERY_BROKER_URL; default {DEFAULT_BROKER}].")),
    (("--backend",), dict(metavar="URL", help="Result backend URL: redis://, db+postgresql://, db+mysql://, db+sqlite:///PATH, django-db+<database URL> [env CELERY_RESULT_BACKEND; default: the broker when it is Redis].")),
    (("-o", "--output"), dict(type=click.Choice(OUTPUTS), help="Output format [default: table].")),
    (("--keyprefix", "global_keyprefix"), dict(metavar="PREFIX", help="kombu Redis transport option global_keyprefix.")),
    (("--priority-steps",), dict(type=Converted("steps", _steps), metavar="0,3,6,9", help="kombu Redis priority_steps.")),
    (("--sep",), dict(type=Converted("sep", _separator), metavar="SEP", help=f"kombu Redis separator for priority lists and bindings [default {DEFAULT_SEP_SHOWN}].")),
    (("--max-size",), dict(type=Converted("size", _size), metavar="SIZE", help="Largest body to decode or decompress [default 64M; at most 1024G].")),
    (("--connect-timeout",), dict(type=Duration(0.1, 600), help="How long to wait for the broker or backend to connect and answer [default 5s; 100ms .. 10m].")),
    (("--management-url",), dict(metavar="URL", help="RabbitMQ management API [default http://<host>:15672 (AMQP port + 10000 off 5672) with the broker's credentials].")),
    (("--master-name",), dict(metavar="NAME", help="Redis Sentinel master name for sentinel:// URLs [env CELERYTOOL_MASTER_NAME; or ?master_name=].")),
    (("-P", "--profile"), dict(metavar="NAME", help="Connection profile from the config file [env CELERYTOOL_PROFILE; default: the profile named default].")),
]
SHARED_KEYS = ["broker", "backend", "output", "global_keyprefix", "priority_steps", "sep", "max_size",
               "connect_timeout", "management_url", "master_name", "profile"]


class ConnectionOption(click.Option):
    """One of the shared options, accepted by every command (before or after its name) and
    documented once: in ``celerytool --help`` and ``celerytool help connection``."""


CONNECTION_SECTION = "Connection options (before or after the command)"
OUTPUT_SECTION = "Output options (before or after the command)"
OUTPUT_OPTIONS = ("output", "max_size")
# Commands that decode message bodies or stored results, for which --max-size matters: their
# --help shows it with their own options.  Every other command accepts it and ignores it.
DECODING_COMMANDS = frozenset({"peek", "decode", "summary", "purge", "move", "export", "import",
                               "unacked", "requeue", "revoke", "result", "results", "forget", "expire"})
CONNECTION_POINTER = ("Connection options (broker and backend URLs, profiles, kombu's layout) go before "
                      "or after the command: see `celerytool help connection`.")


def shown_shared(cmd: click.Command, param: click.Parameter) -> bool:
    """Whether a subcommand's --help lists this shared option with its own ones (the others are
    described once, in `celerytool --help` and `celerytool help connection`)."""
    if param.name == "output":
        return True
    return param.name == "max_size" and cmd.name in DECODING_COMMANDS


def format_sectioned(cmd: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """The root: its options, then output and connection options in sections of their own.
    A command: its own options (with -o, and --max-size where it decodes), then one line
    pointing at the connection options."""
    root = isinstance(cmd, click.Group)
    own: list[tuple[str, str]] = []
    output: list[tuple[str, str]] = []
    connection: list[tuple[str, str]] = []
    help_record = None
    for param in cmd.get_params(ctx):
        if not isinstance(param, click.Option):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.name == "help":
            help_record = record
        elif not isinstance(param, ConnectionOption):
            own.append(record)
        elif root:
            (output if param.name in OUTPUT_OPTIONS else connection).append(record)
        elif shown_shared(cmd, param):
            own.append(record)
    if help_record is not None:
        own.append(help_record)
    if own:
        with formatter.section("Options"):
            formatter.write_dl(own)
    if output:
        with formatter.section(OUTPUT_SECTION):
            formatter.write_dl(output)
    if connection:
        with formatter.section(CONNECTION_SECTION):
            formatter.write_dl(connection)
    if not root and any(isinstance(p, ConnectionOption) for p in cmd.params):
        formatter.write_paragraph()
        formatter.write_text(CONNECTION_POINTER)


class Command(click.Command):
    """A celerytool command: its --help lists its own options and points at the connection options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_sectioned(self, ctx, formatter)


def shared_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decls, attrs in reversed(SHARED):
        f = click.option(*decls, cls=ConnectionOption, default=None, show_envvar=False, **attrs)(f)
    return f


def _table_names(value: str) -> dict[str, str]:
    from celerytool.backends import parse_table_names
    from celerytool.errors import UsageError

    try:
        return parse_table_names(value)
    except UsageError as exc:
        raise click.BadParameter(exc.message) from None


def backend_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--backend-keyprefix (Redis) and --backend-table-names (SQL) for commands that read results."""
    f = click.option("--backend-table-names", "backend_table_names", type=Converted("tables", _table_names),
                     metavar="task=T,group=G",
                     help="database_table_names of a db+ backend [default celery_taskmeta, celery_tasksetmeta].")(f)
    return click.option("--backend-keyprefix", metavar="PREFIX",
                        help="result_backend_transport_options global_keyprefix of the app.")(f)


full_ids_option = click.option(
    "--full-ids", "full_ids", is_flag=True,
    help="Tables: show whole task ids (default: the first 8 characters, more when needed to tell them apart).")


def with_app(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options to a command and pass it an ``App`` first."""

    @functools.wraps(f)
    def wrapper(**kwargs: Any) -> Any:
        given = {k: kwargs.pop(k, None) for k in SHARED_KEYS}
        ctx = click.get_current_context()
        root = ctx.find_root().obj or {}
        merged = {k: (given[k] if given[k] is not None else root.get(k)) for k in SHARED_KEYS}
        app = make_app(merged)
        app.full_ids = bool(kwargs.pop("full_ids", False))
        app.fmt  # noqa: B018 -- a bad CELERYTOOL_OUTPUT is a usage error before anything runs
        ctx.call_on_close(app.close)
        return f(app, **kwargs)

    return shared_options(wrapper)


def make_app(cli_values: dict[str, Any], *, quiet: bool = False) -> App:
    """An App with the effective settings (command line > -P profile > environment > other profile > default);
    ``quiet``: no warnings (shell completion)."""
    from celerytool.cli.settings import resolve

    types = {_dest(decls): attrs.get("type") for decls, attrs in SHARED}
    resolved = resolve(cli_values, types)
    for text in [] if quiet else resolved.warnings:
        from celerytool.render import warn

        warn(text)
    return App(**resolved.values, profile=resolved.profile, sources=resolved.sources)


def _dest(decls: tuple[str, ...]) -> str:
    """The parameter name click gives an option: its explicit name, else the longest flag."""
    for d in decls:
        if not d.startswith("-"):
            return d
    return max(decls, key=len).lstrip("-").replace("-", "_")
