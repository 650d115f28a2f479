"""Bounds on decoded values and on pickle opcode streams (see ``codecs.limits``).

A few bytes of pickle or YAML can describe a value that is huge once
expanded (shared references walked again and again), nested deeper than any
recursive code survives, or holding an integer too long to print.  Anything
that walks a decoded value (JSON output, tables, ``--where``) would then run
for minutes, take gigabytes or crash; ``check_value`` refuses such a value
first, walking it once without recursion and stopping as soon as a limit is
passed.  ``scan_pickle`` reads a pickle's opcodes without running them, so an
opcode count or a memo index that would allocate gigabytes is refused before
the unpickler starts; ``check_json_size``, ``check_msgpack_size`` and
``check_yaml_size`` count a long text's values before it is parsed.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from celerytool.codecs.limits import Limits
from celerytool.errors import DecodeError

_LEAVES = (str, bytes, bytearray, int, float, bool, type(None))


def max_int_bits(limits: Limits) -> int:
    """Bit length of the largest integer with ``max_int_digits`` decimal digits."""
    digits = limits.max_int_digits
    python_limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if python_limit:
        digits = min(digits, python_limit)
    return int(digits / math.log10(2))


def _children(v: Any) -> Any:
    """The parts of a container, or None for a leaf."""
    kind = v.__class__
    if kind is list or kind is tuple:
        return v
    if kind in _LEAVES:
        return None
    if isinstance(v, dict):
        return [*v.keys(), *v.values()]
    if isinstance(v, (list, tuple, set, frozenset)):
        return v
    walk = getattr(v, "__celerytool_children__", None)
    if walk is None or isinstance(v, type):
        return None
    return walk()


def check_value(value: Any, limits: Limits, what: str = "body") -> None:
    """Raise DecodeError when ``value`` is over a limit, as written out in full.

    A value reached through several references counts each time it is reached
    (that is what JSON output or a table pays).  Most values are small and
    share nothing: one pass, level by level, checks them.  Past QUICK_NODES
    the value is walked once more, counting each shared part once: each
    container's expanded size comes from its parts' sizes, bottom up, so a few
    shared objects describing 2**40 values cost microseconds, not minutes.
    """
    int_bits = max_int_bits(limits)
    if not _quick(value, limits, int_bits, what):
        _shared(value, limits, int_bits, what)


QUICK_NODES = 200_000


def _quick(value: Any, limits: Limits, int_bits: int, what: str) -> bool:
    """Check a value level by level; False when it has more than QUICK_NODES parts."""
    budget, max_text, max_depth = min(QUICK_NODES, limits.max_nodes), limits.max_bytes, limits.max_depth
    level, nodes, text, depth = [value], 1, 0, 0
    while level:
        parts: list[Any] = []
        extend = parts.extend
        for v in level:
            kind = v.__class__
            if kind is str or kind is bytes or kind is bytearray:
                text += len(v)
            elif kind is int:
                if v.bit_length() > int_bits:
                    _too_long(limits, what)
            elif kind is list or kind is tuple:
                extend(v)
            elif kind is dict:
                extend(v)
                extend(v.values())
            elif kind in _LEAVES:
                continue
            else:
                more = _children(v)
                if more is None:
                    continue
                extend(more)
            if len(parts) > budget:
                return False
        if text > max_text:
            _too_much_text(limits, what)
        if parts:
            depth += 1
            if depth > max_depth:
                _too_deep(limits, what)
        nodes += len(parts)
        if nodes > budget:
            return False
        level = parts
    return True


def _shared(value: Any, limits: Limits, int_bits: int, what: str) -> None:
    """The exact check: each shared part walked once, its expanded size reused; no recursion."""
    max_nodes, max_depth, max_text = limits.max_nodes, limits.max_depth, limits.max_bytes
    if _children(value) is None:
        _leaf(value, int_bits, limits, what)
        return
    done: dict[int, tuple[int, int, int]] = {}  # id -> (values, text, height) once walked
    open_: set[int] = set()  # on the current path: reaching one again is a cycle
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        v, parts = stack.pop()
        if parts is None:  # first visit: come back after the parts
            if id(v) in done:
                continue
            parts = _children(v)
            open_.add(id(v))
            stack.append((v, parts))
            for c in parts:
                if id(c) in open_:
                    _too_deep(limits, what)  # a cycle: as deep as you care to write it
                if id(c) not in done and _children(c) is not None:
                    stack.append((c, None))
            continue
        nodes, text, height = 1, 0, -1
        for c in parts:
            sizes = done.get(id(c))
            if sizes is None:
                nodes += 1
                text += _leaf(c, int_bits, limits, what)
                height = max(height, 0)
            else:
                nodes += sizes[0]
                text += sizes[1]
                if sizes[2] > height:
                    height = sizes[2]
        height += 1
        if nodes > max_nodes:
            raise DecodeError(f"{what} expands to more than {max_nodes} values "
                              "(shared references counted each time they are used; raise with --max-size)")
        if text > max_text:
            _too_much_text(limits, what)
        if height > max_depth:
            _too_deep(limits, what)
        open_.discard(id(v))
        done[id(v)] = (nodes, text, height)


def _too_deep(limits: Limits, what: str) -> None:
    raise DecodeError(f"{what} nests more than {limits.max_depth} levels deep")


def _too_much_text(limits: Limits, what: str) -> None:
    raise DecodeError(f"{what} expands to more than {limits.max_bytes} bytes of text "
                      "(raise with --max-size)")


def _too_long(limits: Limits, what: str) -> None:
    raise DecodeError(f"{what} holds an integer of more than {limits.max_int_digits} digits")


def _leaf(v: Any, int_bits: int, limits: Limits, what: str) -> int:
    """Check one leaf; its text size."""
    kind = v.__class__
    if kind is str or kind is bytes or kind is bytearray:
        return len(v)
    if kind is int and v.bit_length() > int_bits:
        _too_long(limits, what)
    return 0


# --- counting before parsing ---------------------------------------------------------
# A JSON / YAML / msgpack text as long as --max-size can hold tens of millions of
# values (60 MB of "[]," is 21 million lists, over 1.3 GB): count first, parse after.
# A value takes at least two characters ("0,"), so a text under 2 * max_nodes needs no count.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_STRING_B = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)


def check_json_size(text: str | bytes, limits: Limits, what: str = "body") -> None:
    """Refuse a JSON text of more than ``max_nodes`` values before it is parsed."""
    n = limits.max_nodes
    if len(text) <= 2 * n:
        return
    if _json_values(text) > n:
        stripped = (_JSON_STRING_B if isinstance(text, bytes) else _JSON_STRING).sub(
            b"" if isinstance(text, bytes) else "", text)  # type: ignore[arg-type]
        if _json_values(stripped) > n:
            raise DecodeError(f"{what} holds more than {n} values (raise with --max-size)")


def _json_values(text: str | bytes) -> int:
    """About how many values a JSON text holds (commas, keys and containers; strings too)."""
    if isinstance(text, bytes):
        return text.count(b",") + text.count(b":") + 2 * (text.count(b"[") + text.count(b"{"))
    return text.count(",") + text.count(":") + 2 * (text.count("[") + text.count("{"))


def check_yaml_size(text: str, limits: Limits) -> None:
    """Refuse a YAML text of clearly more than ``max_nodes`` values (lines, items) before parsing."""
    n = limits.max_nodes
    if len(text) > 2 * n and (text.count("\n") + text.count(",") + text.count("[")
                              + text.count("{")) > n:
        raise DecodeError(f"yaml body holds more than about {n} values (lines and items; raise with --max-size)")


def check_msgpack_size(data: bytes, limits: Limits) -> None:
    """Refuse a msgpack body of more than ``max_nodes`` values before unpacking it.

    Each value takes at least one byte and costs up to 60 bytes unpacked (an empty
    array), so only a long body is walked: type bytes read, payloads skipped.
    """
    n, end = limits.max_nodes, len(data)
    if end <= n:
        return
    i = count = 0
    while i < end:
        count += 1
        if count > n:
            raise DecodeError(f"msgpack body holds more than {n} values (raise with --max-size)")
        b = data[i]
        i += 1
        if b <= 0xBF:  # fixint, fixmap, fixarray, fixstr
            if 0xA0 <= b:
                i += b & 0x1F
            continue
        if b >= 0xE0:  # negative fixint
            continue
        size = _MSGPACK_SIZES.get(b)
        if size is not None:
            i += size
            continue
        width = _MSGPACK_LENGTHS.get(b)
        if width is None:  # nil, bool, array / map headers with a count: no payload
            i += _MSGPACK_COUNTS.get(b, 0)
            continue
        length = int.from_bytes(data[i:i + width], "big")
        i += width + length + (1 if 0xC7 <= b <= 0xC9 else 0)  # ext: a type byte too


_MSGPACK_SIZES = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4,
                  0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
_MSGPACK_LENGTHS = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xC7: 1, 0xC8: 2, 0xC9: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
_MSGPACK_COUNTS = {0xDC: 2, 0xDD: 4, 0xDE: 2, 0xDF: 4}  # array16/32, map16/32: the count's bytes


# --- pickle opcodes -----------------------------------------------------------------
# argument kinds, negative: what follows an opcode other than a fixed number of bytes
_LINE, _LEN1, _LEN4S, _LEN4U, _LEN8, _LINES2 = -1, -2, -3, -4, -5, -6  # as pickletools numbers them
_BAD, _STOP, _PUT_TEXT, _PUT4 = -10, -11, -12, -13


def _arg_table() -> list[int]:
    import pickletools

    table = [_BAD] * 256
    for op in pickletools.opcodes:
        n = op.arg.n if op.arg is not None else 0
        if op.arg is not None and op.arg.name == "stringnl_noescape_pair":
            n = _LINES2  # GLOBAL and INST: module and name, two lines
        table[ord(op.code.encode("latin-1"))] = n
    table[ord(".")] = _STOP
    table[ord("p")] = _PUT_TEXT  # PUT: a decimal memo index
    table[ord("r")] = _PUT4  # LONG_BINPUT: a 4-byte memo index (BINPUT's 1 byte is harmless)
    return table


_ARGS: list[int] = []


def scan_pickle(data: bytes, limits: Limits) -> None:
    """Refuse a pickle whose opcodes would cost more than ``limits`` allow, without running it.

    Counts opcodes (each makes at most one object) against ``max_nodes`` and
    refuses memo indexes past it (the C unpickler sizes its memo to the
    largest index: one ``LONG_BINPUT`` can ask for 16 GiB).  Argument bytes
    are skipped, so the cost is a loop over opcodes, not over bytes.
    """
    if not _ARGS:
        _ARGS.extend(_arg_table())
    args, max_ops, end = _ARGS, limits.max_nodes, len(data)
    counting = end > max_ops  # each opcode is at least a byte: a shorter pickle needs no count
    i = ops = 0
    while i < end:
        if counting:
            ops += 1
            if ops > max_ops:
                raise DecodeError(f"pickle runs more than {max_ops} opcodes (raise with --max-size)")
        n = args[data[i]]
        i += 1
        if n >= 0:
            i += n
            continue
        if n == _LINE or n == _LINES2:
            nl = data.find(b"\n", i)
            if n == _LINES2 and nl >= 0:
                nl = data.find(b"\n", nl + 1)
            if nl < 0:
                return  # truncated: the unpickler says so
            i = nl + 1
        elif n == _LEN1:
            i += 1 + data[i] if i < end else 1
        elif n == _LEN4S or n == _LEN4U or n == _LEN8:
            width = 8 if n == _LEN8 else 4
            length = int.from_bytes(data[i:i + width], "little", signed=n == _LEN4S)
            if length < 0:
                raise DecodeError("not a valid pickle: negative length")
            i += width + length
        elif n == _PUT4:
            if int.from_bytes(data[i:i + 4], "little") > max_ops:
                raise DecodeError(f"pickle memo index is past {max_ops}")
            i += 4
        elif n == _PUT_TEXT:
            nl = data.find(b"\n", i)
            text = data[i:nl] if nl >= 0 else b""
            try:
                index = int(text) if len(text) <= 20 else max_ops + 1  # int() as the unpickler reads it
            except ValueError:
                index = 0  # not a number: the unpickler refuses it
            if index > max_ops:
                raise DecodeError(f"pickle memo index is past {max_ops}")
            i = nl + 1 if nl >= 0 else end
        elif n == _STOP:
            return
        else:
            raise DecodeError(f"not a valid pickle: unknown opcode {data[i - 1:i]!r} at byte {i - 1}")
