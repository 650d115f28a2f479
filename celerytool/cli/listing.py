"""The messages a --dry-run would touch, shown as a table (table output only)."""

from __future__ import annotations

from typing import Any

SHOW_AT_MOST = 50


class Shown:
    def __init__(self, app: Any, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled and app.fmt == "table"
        self.rows: list[Any] = []
        self.more = 0

    def add(self, message: Any) -> None:
        if not self.enabled:
            return
        if len(self.rows) < SHOW_AT_MOST:
            self.rows.append(message)
        else:
            self.more += 1

    def flush(self, kind: str = "message") -> None:
        if not self.rows:
            return
        from celerytool.render import emit, note

        emit(self.rows, "table", kind, full_ids=self.app.full_ids)
        if self.more:
            note(f"... and {self.more} more")
