"""The only place that formats output: tables for people, JSON / NDJSON for machines.

stdout carries data only.  ``json`` is one array (one object only for a
command that always returns exactly one record), ``ndjson`` one compact object
per line; ``table`` is text tables in chunks that fit the terminal
(render/table.py).  All three stream: records are written as they come, in
bounded memory.  Words for people go to stderr via ``note``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TextIO, TypeVar

from celerytool import jsontext

FORMATS = ("table", "json", "ndjson")
LIVE_KINDS = ("worker-value", "top")  # tables without fixed columns (render/live.py)
BIG_RECORD = 1 << 16  # characters: a record this long is written on its own, not joined
NDJSON_BATCH = 200


P = ParamSpec("P")
R = TypeVar("R")
_stdout_closed = False


def stdout_closed() -> bool:
    """True once the reader of stdout went away (``| head -n 1``, ``| true``)."""
    return _stdout_closed


def close_stdout() -> None:
    """The reader went away: further output goes to /dev/null (so no later flush fails)."""
    global _stdout_closed
    _stdout_closed = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (tests' captured output)
        pass


def survives_closed_pipe(fn: Callable[P, R]) -> Callable[P, R | int]:
    """A writer of a command's data: when the reader goes away, stop writing and let the command
    finish, so its exit code is its outcome (a failed task stays 1 under ``| head -n 1``)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | int:
        if _stdout_closed:
            return 0
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            close_stdout()
            return 0

    return wrapper


def _json_of(record: Any) -> Any:
    return record.to_json() if hasattr(record, "to_json") else record


def dumps(obj: Any, *, compact: bool = True) -> str:
    if compact:
        return jsontext.dumps(obj)
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _write_texts(texts: Iterable[str], out: TextIO, flush: bool = True) -> int:
    """Write ``texts`` in batches of NDJSON_BATCH (one write per text costs ~10% of peek --all);
    a text over BIG_RECORD is written on its own (joining would copy it: a 50 MB result).
    Returns how many were written."""
    count = 0
    batch: list[str] = []
    for text in texts:
        count += 1
        if len(text) > BIG_RECORD:
            out.write("".join(batch))
            batch.clear()
            out.write(text)
            continue
        batch.append(text)
        if len(batch) >= NDJSON_BATCH:
            out.write("".join(batch))
            batch.clear()
    out.write("".join(batch))
    if flush:
        out.flush()
    return count


@survives_closed_pipe
def emit(records: Iterable[Any], fmt: str, kind: str, *, out: TextIO | None = None,
         full_ids: bool = False) -> int:
    """Write records in ``fmt``; return how many were written."""
    out = out or sys.stdout
    count = 0
    if fmt == "ndjson":  # one record a line
        return _write_texts((jsontext.record_text(r, "\n") for r in records), out)
    if fmt == "json":  # one array
        texts = (("\n" if i == 0 else ",\n") + jsontext.record_text(r) for i, r in enumerate(records))
        out.write("[")
        count = _write_texts(texts, out, flush=False)
        out.write("\n]\n" if count else "]\n")
        out.flush()
        return count
    if kind in LIVE_KINDS:
        from celerytool.render.live import write_live

        return write_live(records, kind, out)
    from celerytool.render.table import write_table

    return write_table(records, kind, out, full_ids=full_ids)


@survives_closed_pipe
def emit_one(record: Any, fmt: str, kind: str, *, out: TextIO | None = None) -> None:
    """One record: a JSON object (not an array) for json/ndjson."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(dumps(_json_of(record), compact=False) + "\n")
    elif fmt == "ndjson":
        out.write(jsontext.record_text(record) + "\n")
    elif kind == "result":
        from celerytool.render.results import write_result_detail

        write_result_detail(record, out)
    elif kind in LIVE_KINDS:
        from celerytool.render.live import write_live

        write_live([record], kind, out)
    else:
        from celerytool.render.table import write_table

        write_table([record], kind, out, full_ids=True)
    out.flush()


def note(message: str) -> None:
    """A line for people, on stderr."""
    from celerytool.render.escape import printable_lines

    sys.stderr.write(printable_lines(message.rstrip("\n")) + "\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    note(f"warning: {message}")
