"""Records shown one by one as key / value lines: a task result in detail (with its
traceback), any record kind without a table of its own; and plain id lines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from celerytool.jsontext import short_repr
from celerytool.render import survives_closed_pipe
from celerytool.render.escape import printable, printable_lines
from celerytool.render.layout import STATUS_SGR, cell, colours

if TYPE_CHECKING:
    from celerytool.model import TaskResult

DETAIL_KEYS = ("name", "args", "kwargs", "worker", "queue", "retries", "date_done", "group_id", "parent_id")


@survives_closed_pipe
def emit_lines(lines: Iterable[str], out: TextIO) -> int:
    """One text line per record (e.g. task ids), streamed a thousand lines a write; the
    lines before an error in ``lines`` are written too."""
    count = 0
    chunk: list[str] = []
    try:
        for line in lines:
            chunk.append(printable(line))
            if len(chunk) >= 1000:
                text, chunk = "\n".join(chunk) + "\n", []
                out.write(text)
                count += 1000
    finally:
        if chunk:
            out.write("\n".join(chunk) + "\n")
            count += len(chunk)
    out.flush()
    return count


def _paint(text: str, code: str, styled: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if styled and code and text else text


def _pairs_text(pairs: list[tuple[str, str, str]], styled: bool) -> str:
    width = max(len(k) for k, _, _ in pairs)
    return "".join((_paint(k.ljust(width), "1;2", styled) + "  " + _paint(cell(v), code, styled)).rstrip(" ")
                   + "\n" for k, v, code in pairs)


def result_pairs(r: TaskResult) -> list[tuple[str, str, str]]:
    pairs = [("id", r.id, ""), ("status", r.status, STATUS_SGR.get(r.status, ""))]
    if r.exception:
        e = r.exception
        pairs.append(("exception", f"{e.get('module')}.{e.get('type')}: {e.get('message')}", "31"))
    elif r.status != "PENDING" or r.result is not None:
        pairs.append(("result", short_repr(r.result, 2000), ""))
    for key in DETAIL_KEYS:
        value = getattr(r, key)
        if value is not None:
            pairs.append((key, value if isinstance(value, str) else short_repr(value, 500), ""))
    if r.children:
        pairs.append(("children", short_repr(r.children, 500), ""))
    if r.error:
        pairs.append(("error", r.error, "31"))
    return pairs


def write_result_detail(r: TaskResult, out: TextIO) -> None:
    """One task result: its fields, then its traceback as stored."""
    styled = colours(out)
    out.write(_pairs_text(result_pairs(r), styled))
    if r.traceback:
        out.write("".join(_paint(line.rstrip(" "), "2", styled) + "\n"
                          for line in printable_lines(str(r.traceback).rstrip("\n")).split("\n")))
    out.flush()


def write_records(records: Iterable[Any], kind: str, out: TextIO) -> int:
    """Any other record: its JSON fields as key / value lines, a blank line between records."""
    styled = colours(out)
    count = 0
    for record in records:
        data = record.to_json() if hasattr(record, "to_json") else record
        # keys come from the broker too (a worker's stats): escaped like every value
        pairs = [(printable(str(k)), v if isinstance(v, str) else short_repr(v, 200), "") for k, v in data.items()]
        out.write(("\n" if count else "") + (_pairs_text(pairs, styled) if pairs else ""))
        count += 1
    out.flush()
    return count
