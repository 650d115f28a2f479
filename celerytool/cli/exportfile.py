"""Reading an export file: checked whole before anything is published."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

from celerytool.errors import DataError, NotFound
from celerytool.export_format import ExportRecord, parse_line


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
