"""Fitting a table into a terminal width (cell widths, cutting with "…", short ids, dropping columns);
the text of a cell, and the ANSI styles used on a terminal.

Pure text, no rich: ``fit`` decides which columns to show and how wide, given
the cells of one chunk of rows.  The order of sacrifices is: columns of low
value are dropped; then long values are cut (each column down to its
minimum); then further columns are dropped, in the order the table names.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from celerytool.render.escape import printable

GAP = 2  # spaces between columns
ELLIPSIS = "…"
COMFORT = 24  # value columns are cut to this before name columns are cut at all
SHORT_ID = 8  # like git's short hashes: the first 8 characters, longer when needed to be unique


@dataclass(frozen=True)
class Spec:
    """How one column may be squeezed.

    ``cut_to`` is its minimum width when cut (0: never cut); ``cut_first``
    columns (arguments, results) are cut before the others (names);
    ``widest`` caps the width the column asks for.
    """

    name: str
    right: bool = False
    cut_to: int = 0
    cut_first: bool = False
    widest: int = 0


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: wide East Asian characters 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return sum(_char_len(c) for c in text)


def _char_len(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, ending in "…" when something was cut off."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    if text.isascii():
        return text[: width - 1] + ELLIPSIS
    used, out = 0, []
    for c in text:
        n = _char_len(c)
        if used + n > width - 1:
            break
        out.append(c)
        used += n
    return "".join(out) + ELLIPSIS


def pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - cell_len(text))
    return fill + text if right else text + fill


def short_ids(ids: Sequence[str]) -> int:
    """The prefix length that tells these ids apart: at least SHORT_ID, as git abbreviates."""
    distinct = {i for i in ids if i}
    n = SHORT_ID
    longest = max((len(i) for i in distinct), default=0)
    while n < longest and len({i[:n] for i in distinct}) < len(distinct):
        n += 1
    return n


def fit(specs: Sequence[Spec], cells: Sequence[Sequence[str]], width: int,
        low_value: Sequence[str] = (), then_drop: Sequence[str] = ()) -> list[tuple[int, int]]:
    """(column index, width) of the columns to show so that a row fits ``width`` cells.

    ``cells[c]`` holds the texts of column ``c`` for every row.
    """
    natural = [max([cell_len(s.name), *map(cell_len, col)]) for s, col in zip(specs, cells, strict=True)]
    natural = [min(n, max(s.widest, cell_len(s.name))) if s.widest else n for n, s in zip(natural, specs, strict=True)]
    index = {s.name: i for i, s in enumerate(specs)}
    shown = list(range(len(specs)))

    def total(widths: dict[int, int]) -> int:
        return sum(widths.values()) + GAP * (len(widths) - 1)

    def squeezed(floor: dict[int, int]) -> dict[int, int]:
        """Cut the widest cuttable columns, one cell at a time, down to ``floor`` at most."""
        widths = {i: natural[i] for i in shown}
        excess = total(widths) - width
        # the cut_first columns down to COMFORT first, then every cuttable column evenly
        for first in (True, False):
            while excess > 0:
                wide = [i for i in shown if widths[i] > floor.get(i, widths[i])
                        and (not first or (specs[i].cut_first and widths[i] > COMFORT))]
                if not wide:
                    break
                top = max(widths[i] for i in wide)
                for i in wide:
                    if widths[i] == top and excess > 0:
                        widths[i] -= 1
                        excess -= 1
        return widths

    def floors() -> dict[int, int]:
        return {i: max(specs[i].cut_to, cell_len(specs[i].name)) for i in shown if specs[i].cut_to}

    widths = {i: natural[i] for i in shown}
    for name in low_value:
        if total(widths) <= width:
            break
        if index.get(name) in shown and len(shown) > 1:
            shown.remove(index[name])
            widths = {i: natural[i] for i in shown}
    widths = squeezed(floors())
    for name in then_drop:
        if total(widths) <= width:
            break
        if index.get(name) in shown and len(shown) > 1:
            shown.remove(index[name])
            widths = squeezed(floors())
    if total(widths) > width:  # a very narrow terminal: cut anything cuttable to a few cells
        widths = squeezed({i: min(3, widths[i]) for i in shown if specs[i].cut_to})
    return [(i, widths[i]) for i in shown]


_BLANKS = str.maketrans("\t\n\r", "   ")


def cell(value: Any) -> str:
    """The text of one table cell: one line (line breaks and tabs shown as spaces), every
    other control character as an escape (``\\x1b``), never obeyed by the terminal."""
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():
        text = printable(text.translate(_BLANKS))
        if not text.isprintable():  # other invisible characters: a space keeps widths right
            text = "".join(c if c.isprintable() else " " for c in text)
    return text


# ANSI styles on a terminal: SGR codes
STATUS_SGR = {"SUCCESS": "32", "FAILURE": "31", "REVOKED": "31", "PENDING": "33", "STARTED": "36", "RETRY": "33"}
SGR = {"bold": "1", "red": "31", "head": "1;2"}


def isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def colours(out: TextIO) -> bool:
    """ANSI styles on a terminal (NO_COLOR turns them off, FORCE_COLOR on)."""
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or isatty(out)
