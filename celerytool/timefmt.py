"""Points in time as celerytool shows them: ISO 8601 text in UTC <-> epoch seconds."""

from __future__ import annotations

import datetime as dt
from typing import Any

UTC = dt.timezone.utc


def epoch(text: Any) -> float | None:
    """An ISO 8601 time (Celery's ``eta``; no offset: UTC, as Celery means it) -> epoch seconds."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def utc_iso(seconds: float) -> str:
    """Epoch seconds -> ISO 8601 in UTC."""
    return dt.datetime.fromtimestamp(seconds, UTC).isoformat()
