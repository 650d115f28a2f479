"""Reading an export file: checked whole before anything is published."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from celerytool.brokers.base import ExportRecord
from celerytool.errors import DataError, NotFound


class ExportFile:
    def __init__(self, fh: IO[bytes], name: str) -> None:
        self.fh = fh
        self.name = name
        self.count = 0

    def check(self) -> None:
        """Parse every line; DataError naming the first bad one."""
        self.count = sum(1 for _ in self._parsed())

    def records(self) -> Iterator[ExportRecord]:
        self.fh.seek(0)
        return self._parsed()

    def _parsed(self) -> Iterator[ExportRecord]:
        self.fh.seek(0)
        for lineno, line in enumerate(self.fh, 1):
            if not line.strip():
                continue
            yield parse_line(line, f"{self.name}:{lineno}")


def parse_line(line: bytes, where: str) -> ExportRecord:
    try:
        data = json.loads(line)
    except RecursionError:
        raise DataError(f"{where}: nests too deeply to be a line written by `celerytool export`") from None
    except ValueError as exc:
        raise DataError(f"{where}: not JSON ({exc}); expected a line written by `celerytool export`") from None
    if not isinstance(data, dict) or "raw" not in data or "queue" not in data:
        raise DataError(f"{where}: not an export record (no 'raw' and 'queue' fields)")
    raw = _raw(data["raw"], where)
    prio = data.get("priority", 0)
    if not isinstance(prio, int) or isinstance(prio, bool):
        raise DataError(f"{where}: 'priority' must be an integer")
    amqp = data.get("amqp")
    if amqp is not None and not isinstance(amqp, dict):
        raise DataError(f"{where}: 'amqp' must be an object of AMQP properties")
    return ExportRecord(str(data.get("broker") or "redis"), str(data["queue"]), prio, raw, {}, amqp=amqp)


def _raw(value: Any, where: str) -> bytes:
    import base64
    import binascii

    if isinstance(value, dict) and value.get("__type__") in ("bytes", "base64"):
        if value["__type__"] == "bytes" and isinstance(value.get("__value__"), str):
            return value["__value__"].encode("utf-8")
        try:
            return base64.b64decode(value.get("__value__") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DataError(f"{where}: 'raw' is not valid base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise DataError(f"{where}: 'raw' must be text or a tagged bytes value")


@contextlib.contextmanager
def open_export(path: str) -> Iterator[ExportFile]:
    if path == "-":  # stdin cannot be read twice: spool it
        with tempfile.TemporaryFile() as tmp:
            shutil.copyfileobj(sys.stdin.buffer, tmp)
            yield ExportFile(tmp, "<stdin>")
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        yield ExportFile(fh, path)
