"""Read a pickle without executing it.

``find_class`` is the only door a pickle has to code: every GLOBAL /
STACK_GLOBAL / EXT opcode goes through it.  Here it never imports anything.
It returns either a small allowlisted real type (datetime, Decimal, UUID,
set, ...) whose construction is harmless, or a generated placeholder class
whose ``__new__`` returns an :class:`Opaque` record of what the pickle would
have built.  REDUCE, NEWOBJ, BUILD, APPEND(S) and SETITEM(S) on a
placeholder only record their arguments.  ``os.system`` therefore becomes
``Opaque('posix', 'system', args=('echo pwned',))`` and nothing runs.
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

from celerytool.errors import DecodeError
from celerytool.jsonable import tag, to_jsonable


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


class InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # never imports
        # Python 2 names (protocols 0-2); the keys never collide with py3 names.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        safe = SAFE.get((module, name))
        if safe is not None:
            return safe
        return _opaque_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        return Opaque("persistent_id", "load", (pid,))


def inert_loads(data: bytes) -> Any:
    """Unpickle ``data`` (protocols 0-5) without running any of its code."""
    try:
        return InertUnpickler(io.BytesIO(data), encoding="latin1").load()
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("pickle nests too deeply") from None
    except MemoryError:
        raise DecodeError("pickle needs too much memory") from None
    except Exception as exc:
        raise DecodeError(f"not a valid pickle: {type(exc).__name__}: {exc}") from None
