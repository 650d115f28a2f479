"""The root ``celerytool`` group: lazy subcommands, shared options, error -> exit code.

Only click is imported at start-up; each command module is imported when
that command runs, and heavy libraries (kombu, rich, redis, pika) only where
a command needs them, so ``--help`` and usage errors are fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping
from typing import Any, NoReturn

import click

from celerytool import __version__
from celerytool.cli.options import Command, format_sectioned, shared_options

# name -> (module, one-line help).  The help is here so that `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "queues": ("celerytool.cli.queues", "List queues with their depth (priority lists included)."),
    "bindings": ("celerytool.cli.bindings", "List exchange -> queue bindings."),
    "peek": ("celerytool.cli.peek", "Show the next messages of a queue without changing it."),
    "decode": ("celerytool.cli.decode", "Decode a message pasted from redis-cli, a log or a file."),
    "send": ("celerytool.cli.send", "Send a task by name, exactly as Celery would."),
    "result": ("celerytool.cli.result", "Show task results; --wait for them. Exit code = outcome."),
    "results": ("celerytool.cli.results", "List stored results (newest first), e.g. recent failures."),
    "purge": ("celerytool.cli.purge", "Remove all, or only the selected, messages of a queue."),
    "move": ("celerytool.cli.move", "Move selected messages to another queue or broker."),
    "unacked": ("celerytool.cli.unacked", "List in-flight messages (Redis unacked hash)."),
    "requeue": ("celerytool.cli.requeue", "Return in-flight messages to their queue (Redis)."),
    "export": ("celerytool.cli.export", "Write a queue's messages to NDJSON, byte-exact."),
    "import": ("celerytool.cli.import_", "Republish messages from an export file."),
    "workers": ("celerytool.cli.workers", "List live workers: queues, pool, task counts; --wait-for N."),
    "inspect": ("celerytool.cli.inspect", "Ask workers: active, reserved, scheduled, revoked, stats..."),
    "top": ("celerytool.cli.top", "Live full-screen view: queues, workers, failures (q quits)."),
    "events": ("celerytool.cli.events", "Follow the live event stream (NDJSON when piped)."),
    "metrics": ("celerytool.cli.metrics", "Prometheus metrics: queues, workers, tasks; once, or --serve [HOST:]PORT."),
    "revoke": ("celerytool.cli.revoke", "Make workers skip tasks by id (--terminate: kill running ones)."),
    "rate-limit": ("celerytool.cli.rate_limit", "Set or lift a task's rate limit on workers (per-worker report)."),
    "time-limit": ("celerytool.cli.time_limit", "Set a task's soft/hard time limits on workers."),
    "pool": ("celerytool.cli.pool", "Grow, shrink, autoscale or restart workers' pools."),
    "pause": ("celerytool.cli.pause", "Stop workers consuming a queue (recorded in the broker) until resume."),
    "resume": ("celerytool.cli.resume", "Start again exactly the workers that pause stopped on a queue."),
    "shutdown": ("celerytool.cli.shutdown", "Warm shutdown of workers, confirmed by pinging until gone."),
    "summary": ("celerytool.cli.summary", "Census of a queue: count, bytes, ETAs per task (or any field)."),
    "doctor": ("celerytool.cli.doctor", "What uses a Celery Redis, what is wrong, and the fix (exit 1 if any)."),
    "delayed": ("celerytool.cli.delayed", "Tasks waiting for their ETA / countdown: where, and when due."),
    "beat": ("celerytool.cli.beat", "Periodic tasks of a beat schedule (RedBeat, django-celery-beat, file); run/enable/disable."),
    "failures": ("celerytool.cli.failures", "What is failing: failed results grouped by exception or task (exit 1 if any)."),
    "retry": ("celerytool.cli.retry", "Send stored failed tasks again (by id, task, exception, age)."),
    "forget": ("celerytool.cli.forget", "Delete stored results by id, state, task or age."),
    "expire": ("celerytool.cli.expire", "Set a TTL on stored results (e.g. those stored without one)."),
    "profiles": ("celerytool.cli.profiles", "List connection profiles and where each setting comes from."),
    "help": ("celerytool.cli.help", "The manual: help PAGE (connection, selection, ...), help COMMAND, help --man."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = module.command
        if type(command) is click.Command:  # every command lists its own options first in --help
            command.__class__ = Command
        return command

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, with "did you mean" for a mistyped command name (as for options)."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            if close:
                hint = repr(close[0]) if len(close) == 1 else "one of: " + ", ".join(map(repr, close))
                ctx.fail(f"No such command {name!r}. (Did you mean {hint}?)")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; turn expected failures into one line and an exit code."""
        from celerytool.errors import CeleryToolError, ExitCode
        from celerytool.render.escape import printable_lines
        from celerytool.urls import redact_text

        try:
            rv = super().invoke(ctx)
        except CeleryToolError as exc:
            click.echo(f"celerytool: error: {printable_lines(redact_text(exc.message))}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("celerytool: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # the reader (head, true) went away before the command had an outcome (a stream, such
            # as events): 141, as a shell reports a command ended by SIGPIPE.  Where the command
            # finishes anyway (render.survives_closed_pipe), its own exit code stands.
            from celerytool.render import close_stdout

            close_stdout()
            ctx.exit(ExitCode.CLOSED_PIPE)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: one line, traceback on demand
            if os.environ.get("CELERYTOOL_DEBUG"):
                raise
            click.echo(
                f"celerytool: internal error: {type(exc).__name__}: {printable_lines(redact_text(str(exc)))} "
                "(set CELERYTOOL_DEBUG=1 for a traceback)",
                err=True,
            )
            ctx.exit(ExitCode.SOFTWARE)
        if isinstance(rv, int) and rv:
            ctx.exit(rv)
        return rv

    def _main_shell_completion(self, ctx_args: MutableMapping[str, Any], prog_name: str,
                               complete_var: str | None = None) -> None:
        if complete_var is None:
            complete_var = f"_{prog_name}_COMPLETE".replace("-", "_").upper()
        if os.environ.get(complete_var):  # our bash completion (URLs with ':' on the line)
            from celerytool.cli.completion import register

            register()
        super()._main_shell_completion(ctx_args, prog_name, complete_var)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        format_sectioned(self, ctx, formatter)
        self.format_commands(ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


EPILOG = """\b
Examples:
  celerytool queues -b redis://localhost:6379/0
  celerytool peek celery -n 5
  celerytool peek celery --all -o ndjson | jq -r .task | sort | uniq -c
  celerytool decode < message.json

\b
Exit codes: 0 ok, 1 failure, 2 usage, 3 not ready, 65 bad data,
66 not found, 69 unreachable, 70 internal error, 124 timeout,
130 interrupted, 141 closed pipe (all: celerytool help exit-codes).

\b
The manual: celerytool help (pages: connection, selection, output, safety, ...).
"""


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="celerytool")
@shared_options
@click.pass_context
def cli(ctx: click.Context, **shared: Any) -> None:
    """See inside and repair Celery brokers and result backends.

    Connects from a URL alone (-b, or CELERY_BROKER_URL); never imports your
    Celery app. Connection and output options work before or after the command.
    """
    ctx.obj = {k: v for k, v in shared.items() if v is not None}


def main(argv: list[str] | None = None) -> NoReturn:
    # A lone surrogate from a decoded body must not crash the output: written as
    # "\udc80" it is still a valid JSON string escape.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        cli.main(args=argv, prog_name="celerytool")
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    finally:  # data still buffered for a reader that went away must not turn into exit 120
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            from celerytool.render import close_stdout

            close_stdout()
        except (OSError, ValueError):
            pass
    leave(code)


def leave(code: object) -> NoReturn:
    """Exit as ``sys.exit(code)`` does, without the interpreter's teardown of every module
    that Celery, kombu and redis-py loaded (a tenth of a second on every command): stderr
    is flushed and the exit functions run (``atexit``); nothing else is left buffered, as
    every command closes what it opened (stdout: ``main``)."""
    import atexit

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("text"): the text on stderr, exit 1
        print(code, file=sys.stderr)
        code = 1
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is not None:
        run_exit_functions()
    for stream in (sys.stderr, sys.stdout):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF)
