"""Terminal control characters shown as escapes, so stored text cannot drive the terminal.

A queue named ``evil\\x1b[2J\\x1b]0;pwned\\x07q`` would clear the screen and set the
window title if printed as it is.  Every C0 / C1 control character, DEL, the line and
paragraph separators and the bidirectional overrides (which reorder what is shown) become
``\\xNN`` / ``\\uNNNN`` (``\\n``, ``\\r``, ``\\t`` by name), as JSON output escapes them.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_CONTROL_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: str) -> str:
    """``text`` for one table cell: every control character escaped."""
    if text.__class__ is not str:
        text = "" if text is None else str(text)
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return _CONTROL.sub(_escape, text)


def printable_lines(text: str) -> str:
    """``text`` for stderr: control characters escaped, line breaks and tabs kept."""
    if text.isascii() and text.isprintable():
        return text
    return _CONTROL_KEEP_LINES.sub(_escape, text)
