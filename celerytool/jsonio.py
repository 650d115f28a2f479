"""JSON text in and out: orjson when installed (several times faster), else the stdlib.

Both give the same values.  ``parse`` falls back to :func:`json.loads` for
whatever orjson reads differently: NaN / Infinity, a byte-order mark, lone
surrogates, nesting past its limit (orjson refuses them) and integers of 19
digits or more (orjson would turn those past 64 bits into floats).  ``dumps``
falls back to :func:`json.dumps` for what orjson cannot write (integers past
64 bits).  The one visible difference: orjson writes floats outside
1e-4..1e16 without the exponent's sign and padding (``1e-7``, not
``1e-07``): the same number.  ``CELERYTOOL_PURE_JSON=1`` uses the stdlib only.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from typing import Any, TextIO

try:
    if os.environ.get("CELERYTOOL_PURE_JSON"):
        raise ImportError
    import orjson
except ImportError:
    orjson = None  # type: ignore[assignment]

# digits -> "0", "[" and "{" -> "[", all else -> " ": one C pass finds long
# digit runs and counts brackets (a bound on nesting depth).
_SHAPE = bytes(48 if 48 <= i <= 57 else 91 if i in (91, 123) else 32 for i in range(256))
_LONG_DIGITS = b"0" * 19
MAX_PLAIN_BRACKETS = 200  # to_jsonable stops at depth 200; fewer brackets cannot reach it

# datetime, dataclass and subclass instances go to the stdlib, as before
_STDLIB_TYPES_ONLY = 0 if orjson is None else (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS)
_dumps_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def parse(raw: bytes) -> tuple[Any, bool]:
    """``json.loads(raw)``, and whether the value is *plain*.

    Plain: only str-keyed dicts, lists, str, int, finite floats, bool and
    None, nested less than 200 deep, so ``to_jsonable`` would return it
    unchanged.  Raises what :func:`json.loads` raises.
    """
    return loads_fast(raw) or loads_plain(raw)


def loads_fast(raw: bytes) -> tuple[Any, bool] | None:
    """``parse(raw)`` with orjson, or None where orjson might read it differently.

    None: orjson is not installed, refuses the text (NaN, Infinity, 1e400, a
    byte-order mark, lone surrogates, bad JSON), or the text holds 19 digits
    in a row (orjson turns integers past 64 bits into floats).
    """
    if orjson is None:
        return None
    shape = raw.translate(_SHAPE)
    if _LONG_DIGITS in shape:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    # valid JSON with n brackets is at least 2n long: short texts need no count
    return value, len(raw) <= 2 * MAX_PLAIN_BRACKETS or shape.count(b"[") <= MAX_PLAIN_BRACKETS


def loads_plain(data: bytes | str) -> tuple[Any, bool]:
    """``parse`` with the stdlib: ``json.loads(data)``, bytes or text."""
    try:
        value = _FINITE.decode(_as_text(data))
    except (_NotFinite, ValueError):  # NaN, Infinity, 1e400; or bad JSON: json.loads says
        return json.loads(data), False
    if len(data) <= 2 * MAX_PLAIN_BRACKETS:
        return value, True
    brackets = data.count("[") + data.count("{") if isinstance(data, str) else data.count(b"[") + data.count(b"{")
    return value, brackets <= MAX_PLAIN_BRACKETS


class _NotFinite(Exception):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # 1e400 overflows to inf
        raise _NotFinite
    return value


def _no_constant(name: str) -> Any:
    raise _NotFinite  # NaN, Infinity, -Infinity


_FINITE = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)


def _as_text(source: bytes | str) -> str:
    """The text json.loads would parse; ValueError where it would refuse the BOM."""
    if isinstance(source, str):
        if source.startswith("\ufeff"):
            raise ValueError("BOM")
        return source
    return source.decode(json.detect_encoding(source), "surrogatepass")


def dumps(value: Any) -> str:
    """Compact JSON text (``,`` ``:``, UTF-8 kept) of a value made of JSON types."""
    if orjson is not None:
        try:
            return orjson.dumps(value, option=_STDLIB_TYPES_ONLY).decode("utf-8")
        except TypeError:  # integers past 64 bits, non-str keys, nesting past 254
            pass
    return _dumps_compact(value)


def line_writer(out: TextIO) -> Callable[[Any], None]:
    """A function writing ``dumps(value)`` and a newline on ``out`` (NDJSON).

    With orjson and a UTF-8 stream it writes the bytes orjson makes to the
    stream's buffer, which saves decoding and re-encoding every line.
    """
    buffer = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None) or "ascii"
    if orjson is None or buffer is None or os.linesep != "\n" or codecs.lookup(encoding).name != "utf-8":
        write_text = out.write
        return lambda value: write_text(dumps(value) + "\n")
    out.flush()  # what is already in the text layer goes first
    write = buffer.write
    errors = out.errors or "strict"
    option = _STDLIB_TYPES_ONLY | orjson.OPT_APPEND_NEWLINE

    def write_line(value: Any) -> None:
        try:
            write(orjson.dumps(value, option=option))
        except TypeError:
            write((_dumps_compact(value) + "\n").encode("utf-8", errors))

    return write_line
