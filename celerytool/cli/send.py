"""celerytool send: publish a task by name exactly as Celery's send_task would."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import Compression, Duration, queue_option, timeout_option, with_app

if TYPE_CHECKING:
    from celerytool.cli.app import App
    from celerytool.sending import RetryPolicy, Sent, TaskSpec
    from celerytool.sending.pipeline import Pipeline

SERIALIZERS = ["json", "pickle", "msgpack", "yaml"]
_T = TypeVar("_T")

@click.command("send")
@click.argument("task", required=False)
@click.argument("arg", nargs=-1)
@click.option("--args", "args_json", metavar="JSON", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments as a JSON object.")
@click.option("-k", "--kwarg", "kwarg", multiple=True, metavar="NAME=VALUE",
              help="One keyword argument (value parsed like ARG). Repeatable.")
@click.option("--countdown", type=Duration(), help="Run no earlier than this long from now (90, 15m, 1h30m).")
@click.option("--eta", metavar="DATETIME", help="Run no earlier than this ISO 8601 time (no offset = UTC).")
@click.option("--expires", metavar="DURATION|DATETIME",
              help="Revoke if not started within this long (90, 10m, 1h30m) or by this ISO 8601 time.")
@queue_option("Queue to send to [default celery].", celery_spelling=True, shell_complete=complete_queues)
@click.option("-e", "--exchange", metavar="NAME", help="Exchange to publish to (with --routing-key).")
@click.option("--routing-key", metavar="KEY", help="Routing key for --exchange.")
@click.option("--exchange-type", type=click.Choice(["direct", "topic", "fanout"]),
              help="Type of --exchange on Redis [default: topic if its bindings hold patterns, else direct].")
@click.option("--priority", type=click.IntRange(0, 255), help="0-9 on Redis (0 = served first), 0-255 on RabbitMQ.")
@click.option("--serializer", type=click.Choice(SERIALIZERS), default="json", show_default=True)
@click.option("--compression", type=Compression(), help="Compress the body (kombu's codecs).")
@click.option("--protocol", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Task message protocol: 2 for Celery 4+, 1 for older workers.")
@click.option("--id", "task_id", metavar="ID", help="Task id [default: a new uuid4].")
@click.option("--header", multiple=True, metavar="NAME=VALUE", help="Extra message header. Repeatable.")
@click.option("--time-limit", type=Duration(), help="Hard time limit (the worker kills the task).")
@click.option("--soft-time-limit", type=Duration(), help="Soft time limit (SoftTimeLimitExceeded in the task).")
@click.option("--link", multiple=True, metavar="TASK", help="Task to call with the result on success. Repeatable.")
@click.option("--link-error", multiple=True, metavar="TASK", help="Task to call on failure. Repeatable.")
@click.option("--retry/--no-retry", default=True, show_default=True, help="Retry publishing while the broker is unreachable.")
@click.option("--retry-max", type=click.IntRange(min=0), default=3, show_default=True, metavar="N")
@click.option("--retry-interval-start", type=Duration(), default=0.0, show_default=True,
              help="Wait before the second attempt.")
@click.option("--retry-interval-step", type=Duration(), default=0.2, show_default=True,
              help="Added to the wait after each attempt.")
@click.option("--retry-interval-max", type=Duration(), default=1.0, show_default=True,
              help="Longest wait between attempts.")
@click.option("--visibility-timeout", type=Duration(1), default="1h", show_default=True, metavar="DURATION",
              help="The workers' Redis visibility_timeout, for the far-ETA warning.")
@click.option("--delayed-delivery/--no-delayed-delivery", default=True, show_default=True,
              help="RabbitMQ: send a countdown / ETA task through Celery's native delayed delivery "
                   "(celery_delayed_27) where Celery 5.5+ would (a destination exchange that is not "
                   "direct and is bound to celery_delayed_delivery); --no-delayed-delivery: the ETA "
                   "header alone, straight to the queue.")
@click.option("--dry-run", is_flag=True, help="Print the message that would be published; publish nothing.")
@click.option("--wait", is_flag=True, help="Wait for the result and exit as `result --wait` does.")
@timeout_option(None, "With --wait: give up after this long (exit 124).")
@click.option("--from", "from_file", type=click.File("r"), metavar="FILE|-",
              help='NDJSON, one task a line: {"task":..., "args":[...], "kwargs":{...}, "options":{...}}.')
@with_app
def command(app, task, arg, args_json, kwargs_json, kwarg, countdown, eta, expires, queue, exchange,
            routing_key, exchange_type, priority, serializer, compression, protocol, task_id, header,
            time_limit, soft_time_limit, link, link_error, retry, retry_max, retry_interval_start,
            retry_interval_step, retry_interval_max, visibility_timeout, delayed_delivery, dry_run, wait, timeout,
            from_file):
    """Send TASK (a task name) with ARGs, as Celery's send_task would.

    Each ARG is a JSON literal when it parses as one (4 is a number, '"4"' a
    string, '[1,2]' a list), else a plain string. The task id goes to stdout.
    Options of the NDJSON lines of --from take the names of apply_async
    (countdown, eta, expires, queue, priority, serializer, task_id, headers,
    link, ...); the command-line options are their defaults.

    \b
    Examples:
      celerytool send tasks.add 4 4
      ID=$(celerytool send tasks.add 2 2 --countdown 10 --priority 0)
      celerytool send tasks.report -k day='"2030-01-01"' --queue reports --wait --timeout 60
      celerytool send tasks.add 1 2 --serializer pickle --compression zlib --dry-run
      jq -c '{task: "tasks.add", args: [., 1]}' ids.json | celerytool send --from -

    \b
    Exit codes: 0 sent; 1 unroutable (no queue bound); 2 usage; 65 bad --from
    line (the lines before it were sent, as stderr says); 69 broker unreachable
    after the retry policy. With --wait, the codes of `result --wait`.
    """
    from celerytool.errors import UsageError
    from celerytool.sending import RetryPolicy

    if from_file is None and not task:
        raise UsageError("give a TASK name (or --from FILE)")
    if from_file is not None and (task or arg or args_json or kwargs_json or kwarg or task_id):
        raise UsageError("--from takes tasks from the file: no TASK, ARG, --args, --kwargs or --id with it")
    if from_file is not None and wait:
        raise UsageError("--wait works with a single task, not --from")
    policy = RetryPolicy(enabled=retry, max_retries=retry_max, interval_start=retry_interval_start,
                         interval_step=retry_interval_step, interval_max=retry_interval_max)
    options = dict(countdown=countdown, eta=eta, expires=expires, queue=queue, exchange=exchange,
                   routing_key=routing_key, exchange_type=exchange_type, priority=priority,
                   serializer=serializer, compression=compression, protocol=int(protocol),
                   time_limit=time_limit, soft_time_limit=soft_time_limit, link=tuple(link),
                   link_error=tuple(link_error))
    pipe = pipeline(app, policy, visibility_timeout=visibility_timeout, delayed_delivery=delayed_delivery)
    defaults = pipe.defaults(options, header)
    if from_file is not None:
        return send_stream(app, pipe, from_file, defaults, dry_run=dry_run)
    spec = pipe.single_spec(task, arg, args_json, kwargs_json, kwarg, task_id, defaults)
    return send_one(app, pipe, spec, dry_run=dry_run, wait=wait, timeout=timeout)


# -- the send pipeline (sending/pipeline.py) seen from the command line: notes, output ---------
def pipeline(app: App, policy: RetryPolicy | None = None, *, visibility_timeout: float = 3600.0,
             delayed_delivery: bool = True) -> Pipeline:
    """The send pipeline to the command's broker, its notes and warnings on stderr."""
    from celerytool.render import note, warn
    from celerytool.sending import RetryPolicy
    from celerytool.sending.pipeline import Pipeline

    return Pipeline(app.open_broker, app.broker_url.raw, policy or RetryPolicy(),
                    visibility_timeout=visibility_timeout, delayed_delivery=delayed_delivery,
                    say=note, warn=warn)


def send_one(app: App, pipe: Pipeline, spec: TaskSpec, *, dry_run: bool, wait: bool = False,
             timeout: float | None = None) -> int:
    """Send one task; its id on stdout (table) or its record; ``--wait``: then its result."""
    message, sent = pipe.prepare(spec)
    if dry_run:  # the exact message is the data: JSON even in table mode
        from celerytool.render import emit_one
        from celerytool.sending.pipeline import DryRun

        emit_one(DryRun(message), "json" if app.fmt == "table" else app.fmt, "dry-run")
        return 0
    if wait:  # a backend we cannot read is a usage error before anything is sent
        from celerytool.backends import open_backend

        open_backend(app.backend_url)
    pipe.publish([message])
    if wait:
        from celerytool.cli.result import show_results
        from celerytool.render import note

        note(f"sent {sent.id}; waiting for its result")
        return show_results(app, [sent.id], wait=True, timeout=timeout, one=True)
    if app.fmt == "table":
        emit_sent(app, [sent])
    else:
        app.emit_one(sent, "sent")
    return 0


def emit_sent(app: App, records: Iterable[Sent]) -> int:
    """Ids one a line (table) or the records; returns how many."""
    if app.fmt == "table":
        import sys

        from celerytool.render.results import emit_lines

        return emit_lines((r.id for r in records), sys.stdout)
    return app.emit(records, "sent")


def send_stream(app: App, pipe: Pipeline, stream: Iterable[str], defaults: TaskSpec, *, dry_run: bool) -> int:
    """``send --from``: one task a line, published in pipelined batches (a count on a terminal)."""
    if dry_run:
        from celerytool.render import emit
        from celerytool.sending.pipeline import DryRun

        emit((DryRun(m) for m in pipe.planned(stream, defaults)), "ndjson" if app.fmt == "table" else app.fmt,
             "dry-run")
        return 0
    from celerytool.bulk import gc_paused
    from celerytool.render import note

    with gc_paused(), counting(app, pipe, "sending"):
        total = listed_while_sent(lambda records: emit_sent(app, records), pipe.send_stream(stream, defaults))
    note(f"sent {total} task(s)")
    return 0


def listed_while_sent(write: Callable[[Iterable[_T]], object], records: Iterable[_T]) -> int:
    """``write`` each record as its task is sent (``records`` sends as it is iterated); how
    many were sent.  When stdout's reader goes away, the writer stops early: the rest is still
    sent, unlisted (``send --from ... | head -n 1`` sends every line)."""
    count = 0

    def counted() -> Iterator[_T]:
        nonlocal count
        for record in records:
            count += 1
            yield record

    it = counted()
    write(it)
    for _ in it:
        pass
    return count


@contextlib.contextmanager
def counting(app: App, pipe: Pipeline, label: str, total: int | None = None) -> Iterator[None]:
    """A progress bar on stderr (a terminal only) advanced after each published batch."""
    from celerytool.render.progress import progress

    with progress(total, label, enabled=app.stderr_is_tty()) as bar:
        done = [0]

        def on_batch(sent: int) -> None:
            bar.advance(sent - done[0])
            done[0] = sent

        pipe.on_batch = on_batch
        try:
            yield
        finally:
            pipe.on_batch = None
