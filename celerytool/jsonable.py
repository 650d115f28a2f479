"""Turn decoded Python values into JSON, in one documented, reversible, tagged form.

Values JSON cannot hold become ``{"__type__": T, "__value__": V}``, the form
kombu's own JSON serializer uses, so a celerytool export reads back with
``kombu.utils.json.loads`` where kombu knows the type:

=============  ==========================================================
``datetime``   ISO 8601 text (``date``, ``time`` likewise)
``timedelta``  total seconds (float)
``decimal``    the number as text
``uuid``       canonical text
``bytes``      UTF-8 text; ``base64`` (text) when not valid UTF-8
``set``        list (``frozenset`` likewise)
``complex``    ``[real, imag]``
``pickle``     an object a pickle would have built, never built:
               ``{"global": "module.name", "args": [...], "state": ...,
               "items": [...], "dict": {...}}`` (keys only when present)
``repr``       anything else, as its ``repr``
=============  ==========================================================

Tuples become lists; dict keys that are not strings become their JSON text.
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
from typing import Any


def tag(kind: str, value: Any) -> dict[str, Any]:
    return {"__type__": kind, "__value__": value}


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Return a structure made only of dict/list/str/int/float/bool/None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return tag("float", repr(value))
    if _depth > 200:
        return tag("repr", "<nested too deeply>")
    d = _depth + 1
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, d) for v in value]
    if isinstance(value, _dt.datetime):
        return tag("datetime", value.isoformat())
    if isinstance(value, _dt.date):
        return tag("date", value.isoformat())
    if isinstance(value, _dt.time):
        return tag("time", value.isoformat())
    if isinstance(value, _dt.timedelta):
        return tag("timedelta", value.total_seconds())
    if isinstance(value, _dt.tzinfo):
        return tag("tzinfo", str(value))
    if _instance_of(value, "decimal", "Decimal"):
        return tag("decimal", str(value))
    if _instance_of(value, "uuid", "UUID"):
        return tag("uuid", str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return tag("bytes", raw.decode("utf-8"))
        except UnicodeDecodeError:
            import base64

            return tag("base64", base64.b64encode(raw).decode("ascii"))
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, d) for v in value]
        try:
            items.sort(key=repr)
        except Exception:  # pragma: no cover - repr never fails on jsonable
            pass
        return tag("set", items)
    if isinstance(value, complex):
        return tag("complex", [value.real, value.imag])
    describe = getattr(value, "__celerytool_json__", None)
    if describe is not None:
        return describe(d)
    return tag("repr", repr(value))


def _instance_of(value: Any, module: str, name: str) -> bool:
    """isinstance without importing ``module``: no instance exists before its import."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if k is None or isinstance(k, (bool, int, float)):
        import json

        return json.dumps(k)
    return repr(k)


def short_repr(value: Any, limit: int = 80, *, spaced: bool = False) -> str:
    """A one-line text of a decoded value, for tables (``spaced``: as Celery writes JSON, ``[1, 2]``)."""
    import json

    try:
        text = json.dumps(to_jsonable(value), ensure_ascii=False,
                          separators=(", ", ": ") if spaced else (",", ":"))
    except Exception:
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
