"""Bounds on decoded values and on pickle opcode streams (see ``codecs.limits``).

A few bytes of pickle or YAML can describe a value that is huge once
expanded (shared references walked again and again), nested deeper than any
recursive code survives, or holding an integer too long to print.  Anything
that walks a decoded value (JSON output, tables, ``--where``) would then run
for minutes, take gigabytes or crash; ``check_value`` refuses such a value
first, walking it once without recursion and stopping as soon as a limit is
passed.  ``scan_pickle`` reads a pickle's opcodes without running them, so an
opcode count or a memo index that would allocate gigabytes is refused before
the unpickler starts.
"""

from __future__ import annotations

import math
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

    A value reached through several references counts each time (that is what
    JSON output or a table pays), but is walked once: each container's
    expanded size (values, text, height) is computed from its parts', bottom
    up and without recursion, so a few shared objects describing 2**40 values
    cost microseconds.  A value that contains itself is refused.
    """
    max_nodes, max_depth, max_text = limits.max_nodes, limits.max_depth, limits.max_bytes
    int_bits = max_int_bits(limits)
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
                    raise DecodeError(f"{what} contains itself (a reference cycle)")
                if id(c) not in done and _children(c) is not None:
                    stack.append((c, None))
            continue
        nodes, text, height = 1, 0, 0
        for c in parts:
            sizes = done.get(id(c))
            if sizes is None:
                nodes += 1
                text += _leaf(c, int_bits, limits, what)
            else:
                nodes += sizes[0]
                text += sizes[1]
                if sizes[2] > height:
                    height = sizes[2]
        height += 1
        if nodes > max_nodes:
            raise DecodeError(f"{what} expands to more than {max_nodes} values "
                              "(shared references counted each time they are used)")
        if text > max_text:
            raise DecodeError(f"{what} expands to more than {max_text} bytes of text "
                              "(raise with --max-size)")
        if height > max_depth:
            raise DecodeError(f"{what} nests more than {max_depth} levels deep")
        open_.discard(id(v))
        done[id(v)] = (nodes, text, height)


def _leaf(v: Any, int_bits: int, limits: Limits, what: str) -> int:
    """Check one leaf; its text size."""
    kind = v.__class__
    if kind is str or kind is bytes or kind is bytearray:
        return len(v)
    if kind is int and v.bit_length() > int_bits:
        raise DecodeError(f"{what} holds an integer of more than {limits.max_int_digits} digits")
    return 0


# --- pickle opcodes -----------------------------------------------------------------
_LINE, _LINES2, _LEN1, _LEN4S, _LEN4U, _LEN8 = -1, -6, -2, -3, -4, -5
_PUTS = {ord("p"), ord("q"), ord("r")}  # PUT (text index), BINPUT (1 byte), LONG_BINPUT (4 bytes)


def _arg_table() -> list[int | None]:
    import pickletools

    table: list[int | None] = [None] * 256
    for op in pickletools.opcodes:
        n = op.arg.n if op.arg is not None else 0
        if op.arg is not None and op.arg.name == "stringnl_noescape_pair":
            n = _LINES2  # GLOBAL and INST: module and name, two lines
        table[ord(op.code.encode("latin-1"))] = n
    return table


_ARGS: list[int | None] = []


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
    i = ops = 0
    while i < end:
        code = data[i]
        n = args[code]
        i += 1
        ops += 1
        if ops > max_ops:
            raise DecodeError(f"pickle runs more than {max_ops} opcodes")
        if n is None:
            raise DecodeError(f"not a valid pickle: unknown opcode {bytes([code])!r} at byte {i - 1}")
        if n >= 0:
            if code in _PUTS and n:
                index = int.from_bytes(data[i:i + n], "little")
                if index > max_ops:
                    raise DecodeError(f"pickle memo index {index} is past {max_ops}")
            i += n
            if code == 0x2E:  # STOP
                return
        elif n == _LINE or n == _LINES2:
            stop = data.find(b"\n", i)
            if n == _LINES2 and stop >= 0:
                stop = data.find(b"\n", stop + 1)
            if stop < 0:
                return  # truncated: the unpickler says so
            if code == 0x70:  # PUT with a decimal index
                text = data[i:stop]
                if len(text) > 12 or (text.strip().isdigit() and int(text) > max_ops):
                    raise DecodeError("pickle memo index is past the limit")
            i = stop + 1
        else:
            width = 1 if n == _LEN1 else 8 if n == _LEN8 else 4
            length = int.from_bytes(data[i:i + width], "little", signed=n == _LEN4S)
            if length < 0:
                raise DecodeError("not a valid pickle: negative length")
            i += width + length
