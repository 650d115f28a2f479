"""Read a pickle without executing it.

``find_class`` is the only door a pickle has to code: every GLOBAL /
STACK_GLOBAL / EXT opcode goes through it.  Here it never imports anything.
It returns either a small allowlisted real type (datetime, Decimal, UUID,
set, ...) whose construction is harmless, or a generated placeholder class
whose ``__new__`` returns an :class:`Opaque` record of what the pickle would
have built.  REDUCE, NEWOBJ, BUILD, APPEND(S) and SETITEM(S) on a
placeholder only record their arguments.  ``os.system`` therefore becomes
``Opaque('posix', 'system', args=('echo pwned',))`` and nothing runs.

Inert is not enough: ``bytearray(1 << 30)`` is harmless code that allocates
a gigabyte, and a few ``DUP`` opcodes build a value of billions of parts.
So the opcodes are scanned first, ``bytes`` / ``bytearray`` share one size
budget, and the result is checked against the limits (``codecs.bounds``).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import datetime
import decimal
import io
import pickle
import uuid
from typing import Any

from celerytool.codecs.bounds import check_value, scan_pickle
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import DecodeError
from celerytool.jsontext import tag, to_jsonable


class Opaque:
    """What a pickle would have built from ``module.name``, never built."""

    __slots__ = ("module", "name", "args", "kwargs", "state", "listitems", "dictitems")

    def __init__(self, module: str, name: str, args: tuple[Any, ...] = (), kwargs: dict | None = None):
        self.module = module
        self.name = name
        self.args = args
        self.kwargs = kwargs or {}
        self.state: Any = None
        self.listitems: list[Any] = []
        self.dictitems: list[tuple[Any, Any]] = []

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    # The unpickler calls these for BUILD, APPEND(S) and SETITEM(S).
    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, item: Any) -> None:
        self.listitems.append(item)

    def extend(self, items: Any) -> None:
        self.listitems.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.dictitems.append((key, value))

    def __repr__(self) -> str:
        return f"<opaque {self.qualname} args={self.args!r}>"

    def __celerytool_children__(self) -> list[Any]:  # what codecs.bounds walks
        return [self.args, self.kwargs, self.state, self.listitems, self.dictitems]

    def __celerytool_json__(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {"global": self.qualname, "args": to_jsonable(self.args, depth)}
        if self.kwargs:
            out["kwargs"] = to_jsonable(self.kwargs, depth)
        if self.state is not None:
            out["state"] = to_jsonable(self.state, depth)
        if self.listitems:
            out["items"] = to_jsonable(self.listitems, depth)
        if self.dictitems:
            out["dict"] = to_jsonable(dict((repr(k) if not isinstance(k, str) else k, v) for k, v in self.dictitems), depth)
        return tag("pickle", out)


def _opaque_class(module: str, name: str) -> type:
    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:  # noqa: N807
        return Opaque(module, name, args, kwargs)

    def describe(cls, depth: int) -> dict[str, Any]:
        return tag("pickle", {"global": f"{module}.{name}", "class": True})

    return type(
        f"opaque:{module}.{name}",
        (),
        {"__new__": __new__, "__celerytool_json__": classmethod(describe), "__slots__": ()},
    )


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol 2 pickles bytes as _codecs.encode(str, 'latin1'); only allow
    # real text encodings, never codecs such as zlib_codec (a bomb).
    if codecs.lookup(encoding).name not in {"latin-1", "iso8859-1", "utf-8", "ascii"}:
        raise DecodeError(f"pickle asks for codec {encoding!r}, refused")
    return codecs.encode(text, encoding, errors)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # Protocols 0/1 build plain objects through copyreg._reconstructor.
    import copyreg

    if cls in _SAFE_TYPES and base is object:
        return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]
    name = getattr(cls, "__name__", repr(cls)).removeprefix("opaque:")
    module, _, attr = name.rpartition(".")
    return Opaque(module or "?", attr, (), {"state": state} if state is not None else None)


SAFE: dict[tuple[str, str], Any] = {
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("decimal", "Decimal"): decimal.Decimal,
    ("uuid", "UUID"): uuid.UUID,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "bytes"): bytes,
    ("builtins", "complex"): complex,
    ("collections", "OrderedDict"): dict,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
}
_SAFE_TYPES = {v for v in SAFE.values() if isinstance(v, type) and v is not object}


def _sized(base: type, budget: list[int]) -> type:
    """``base`` (bytes or bytearray) whose size arguments draw on one shared budget."""

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        for a in (*args, *kwargs.values()):
            if a.__class__ is int:
                budget[0] -= a
                if budget[0] < 0:
                    raise DecodeError(f"pickle asks for {base.__name__}({a}), over the size limit "
                                      "(raise with --max-size)")
        return base(*args, **kwargs)  # a real bytes / bytearray

    return type(base.__name__, (base,), {"__new__": __new__, "__module__": "builtins"})


class InertUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, *, limits: Limits = DEFAULT_LIMITS, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._budget = [limits.max_bytes]
        self._sized_types: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:  # never imports
        # Python 2 names (protocols 0-2); the keys never collide with py3 names.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        safe = SAFE.get((module, name))
        if safe is bytes or safe is bytearray:  # bytearray(1 << 30) is inert but costs 1 GiB
            sized = self._sized_types.get(name)
            if sized is None:
                sized = self._sized_types[name] = _sized(safe, self._budget)
            return sized
        if safe is not None:
            return safe
        return _opaque_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return Opaque("persistent_id", "load", (pid,))


def inert_loads(data: bytes, limits: Limits = DEFAULT_LIMITS, unpickler: type[InertUnpickler] = InertUnpickler) -> Any:
    """Unpickle ``data`` (protocols 0-5) without running any of its code, within ``limits``."""
    try:
        scan_pickle(data, limits)
        value = unpickler(io.BytesIO(data), limits=limits, encoding="latin1").load()
        check_value(value, limits, "pickle")
        return value
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("pickle nests too deeply") from None
    except MemoryError:
        raise DecodeError("pickle needs too much memory") from None
    except Exception as exc:
        raise DecodeError(f"not a valid pickle: {type(exc).__name__}: {exc}") from None
