"""Shell completion: bash word splitting that survives URLs, and queue names from the broker.

bash splits ``COMP_WORDS`` at every character of ``COMP_WORDBREAKS`` (``:``
and ``=`` among them), so ``-b redis://h:6379/0`` arrives as five words and
click's own bash support mis-counts every word after it.  The script below
also sends the line up to the cursor (``COMP_LINE``), which this class splits
as a shell would; what bash will replace (its current word, which starts after
the last word break) is sent too, so a completion keeps only the part bash
expects.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import (
    BashComplete,
    CompletionItem,
    add_completion_class,
    split_arg_string,
)

QUEUE_TIMEOUT = 0.5  # seconds: completion must be quick, and silent when the broker is away

SOURCE_BASH = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response

    # COMP_LINE: the line as typed, up to the cursor (COMP_WORDS is split at ':' and '=').
    response=$(env COMP_LINE="${COMP_LINE:0:COMP_POINT}" COMP_CUR="${COMP_WORDS[COMP_CWORD]}" \\
        COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD %(complete_var)s=bash_complete $1)

    for completion in $response; do
        IFS=',' read type value <<< "$completion"

        if [[ $type == 'dir' ]]; then
            COMPREPLY=()
            compopt -o dirnames
        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default
        elif [[ $type == 'plain' ]]; then
            COMPREPLY+=($value)
        fi
    done

    return 0
}

%(complete_func)s_setup() {
    complete -o nosort -F %(complete_func)s %(prog_name)s
}

%(complete_func)s_setup;
"""


class LineBashComplete(BashComplete):
    """click's bash completion, reading the line as typed instead of bash's split words."""

    source_template = SOURCE_BASH

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("COMP_LINE")
        if not line:  # an older script, or called by hand: click's own way
            return super().get_completion_args()
        words = split_arg_string(line)
        if not words or len(split_arg_string(line + "x")) > len(words):
            return words[1:], ""  # the cursor starts a new word
        return words[1:-1], words[-1]

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        cur = os.environ.get("COMP_CUR", incomplete)
        # bash replaces only its current word, which starts after the last ':' or '='
        drop = len(incomplete) - len(cur) if cur and incomplete.endswith(cur) else 0
        out = []
        for item in self.get_completions(args, incomplete):
            if drop and item.type == "plain" and isinstance(item.value, str):
                item = CompletionItem(item.value[drop:], type=item.type, help=item.help)
            out.append(self.format_completion(item))
        return "\n".join(out)


def register() -> None:
    add_completion_class(LineBashComplete, "bash")


def complete_queues(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Queue names from the broker named so far on the line; nothing when it cannot be asked quickly."""
    try:
        names = _queue_names(ctx)
    except BaseException:  # unreachable, bad URL, no broker: complete nothing, say nothing
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def _queue_names(ctx: click.Context) -> list[str]:
    from celerytool.cli.options import SHARED_KEYS, make_app

    merged: dict[str, Any] = {}
    node: click.Context | None = ctx
    while node is not None:  # the subcommand's options win over the root's
        for key in SHARED_KEYS:
            if merged.get(key) is None and node.params.get(key) is not None:
                merged[key] = node.params[key]
        node = node.parent
    merged["connect_timeout"] = min(float(merged.get("connect_timeout") or QUEUE_TIMEOUT), QUEUE_TIMEOUT)
    app = make_app(merged, quiet=True)  # the profile too (-P, $CELERYTOOL_PROFILE, default)
    broker = app.open_broker()
    try:  # no passive declares on RabbitMQ; Redis scans for lists only in a small database
        return [q.name for q in broker.queues(exact=False) if q.exists is not False]
    finally:
        broker.close()
