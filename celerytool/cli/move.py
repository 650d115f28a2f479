"""celerytool move: move selected messages to another queue, on this broker or another."""

from __future__ import annotations

import click

from celerytool.cli.completion import complete_queues
from celerytool.cli.options import full_ids_option, with_app
from celerytool.cli.selection_options import selection_options


@click.command("move")
@click.argument("src", shell_complete=complete_queues)
@click.argument("dst", required=False, shell_complete=complete_queues)
@selection_options()
@click.option("--to-broker", metavar="URL", help="Move to DST on another broker (at-least-once).")
@click.option("--to-origin", is_flag=True,
              help="RabbitMQ: each dead-lettered message back to the queue it was dead-lettered from "
                   "(its x-death), without the x-death headers; no DST.")
@click.option("--keep-routing", is_flag=True,
              help="Keep delivery_info as it is (default: point it at DST, so a restore goes to DST).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--dry-run", is_flag=True, help="Count and list what would move; change nothing.")
@full_ids_option
@with_app
def command(app, src, dst, selection, to_origin, to_broker, keep_routing, yes, dry_run):
    """Move the selected messages of SRC to the queue DST (or, with --to-origin, back where they died).

    On one Redis each message leaves SRC and enters DST in a single atomic
    step: a kill -9 at any moment leaves every message in exactly one of the
    two queues. With --to-broker, each batch is published to the other broker
    and confirmed before it is removed from SRC (at-least-once: a crash in
    between can leave a copy in both, never in neither).

    \b
    Examples:
      celerytool move celery slow --task 'reports.*' --yes
      celerytool move celery celery --to-broker redis://new-host:6379/0 --yes
      celerytool move celery retry_later --where 'retries >= 3' --dry-run
      celerytool move celery.dlq --to-origin --where 'x_death.reason == "rejected"' --yes
    """
    from celerytool.cli.guard import finish, vanished_note, walk_queue
    from celerytool.errors import UsageError

    if to_origin:
        return _to_origin(app, src, dst, selection, to_broker, yes, dry_run)
    if dst is None:
        raise UsageError("give a destination queue DST (or --to-origin for dead-lettered messages)")
    broker = app.open_broker()
    target = None
    where = app.broker_url.redacted()
    if to_broker:
        from celerytool.cli.settings import finish_url
        from celerytool.urls import parse_url

        target_url = finish_url(parse_url(to_broker), "to_broker", app)  # sentinel:// settings
        target = app.open_broker(target_url)
        where = target_url.redacted()
    ops = broker.ops()
    what = selection.describe()
    result = walk_queue(app, broker, src, question=f"Move {what} from {src!r} to {dst!r} on {where}?",
                        label="moving", yes=yes, dry_run=dry_run,
                        op=lambda control: ops.move(src, dst, selection, control, target=target,
                                                    keep_routing=keep_routing))
    result.extra.setdefault("to", dst)  # a dry run too (output.md's `move` fields)
    if dry_run:
        summary = f"would move {result.matched} of {result.examined} message(s) from {src!r} to {dst!r}"
    else:
        summary = f"moved {result.done} message(s) from {src!r} to {dst!r}, {result.kept} left in {src!r}"
        if result.vanished and target is not None:
            summary += (f" ({result.vanished} were consumed from {src!r} while being copied:"
                        " they were delivered there and also published to the other broker)")
        else:
            summary += vanished_note(result)
    return finish(app, result, summary)


def _to_origin(app, src, dst, selection, to_broker, yes, dry_run):
    from celerytool.cli.guard import finish, vanished_note, walk_queue
    from celerytool.errors import UsageError

    if dst is not None or to_broker:
        raise UsageError("--to-origin sends each message back to the queue it was dead-lettered from: "
                         "no DST and no --to-broker with it")
    broker = app.open_broker()
    if not broker.capabilities.dead_letters:
        raise UsageError(f"{broker.capabilities.name} keeps no dead-lettering history (x-death is "
                         "RabbitMQ's): give a destination queue")
    ops = broker.ops()
    what = selection.describe()
    result = walk_queue(app, broker, src, question=f"Move {what} (dead-lettered) from {src!r} back to the queues "
                        f"they came from on {app.broker_url.redacted()}?", label="moving", yes=yes,
                        dry_run=dry_run, op=lambda control: ops.move_to_origin(src, selection, control))
    if dry_run:
        summary = (f"would move {result.matched} of {result.examined} message(s) from {src!r} "
                   "back to the queues they were dead-lettered from")
    else:
        summary = (f"moved {result.done} dead-lettered message(s) from {src!r} back to their queues, "
                   f"{result.kept} left in {src!r}" + vanished_note(result))
    return finish(app, result, summary)
