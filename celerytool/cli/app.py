"""The ``App`` each command receives: the effective settings, and the broker, backend and
output opened from them on first use (closed when the command ends)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from celerytool.backends.query import ResultBackend
    from celerytool.brokers.base import Broker, BrokerOptions
    from celerytool.codecs.limits import Limits
    from celerytool.profiles import Profile
    from celerytool.urls import BrokerURL

DEFAULT_BROKER = "redis://localhost:6379/0"
OUTPUTS = ("table", "json", "ndjson")


class Resource(Protocol):
    """What a command opens and ``App`` closes when it ends (its ``warnings`` are shown, if any)."""

    def close(self) -> None: ...


@dataclass
class App:
    broker: str | None = None
    backend: str | None = None
    output: str | None = None
    global_keyprefix: str | None = None
    priority_steps: tuple[int, ...] | None = None
    sep: str | None = None
    max_size: int | None = None
    connect_timeout: float | None = None
    management_url: str | None = None
    master_name: str | None = None
    profile: Profile | None = None  # the profile in use, if any
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from
    full_ids: bool = False  # tables: whole task ids instead of git-style short ones
    _opened: list[Resource] = field(default_factory=list)

    @property
    def fmt(self) -> str:
        if self.output:
            return self.output
        env = os.environ.get("CELERYTOOL_OUTPUT")
        if env and env not in OUTPUTS:
            from celerytool.errors import UsageError

            raise UsageError(f"CELERYTOOL_OUTPUT={env!r} is not one of {', '.join(OUTPUTS)}")
        return env or "table"

    @functools.cached_property
    def broker_url(self) -> BrokerURL:
        from celerytool.cli.settings import finish_url
        from celerytool.urls import parse_url

        raw = self.broker or os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER
        return finish_url(parse_url(raw), "broker", self)

    @functools.cached_property
    def backend_url(self) -> BrokerURL:
        from celerytool.errors import UsageError
        from celerytool.urls import parse_url

        raw = self.backend or os.environ.get("CELERY_RESULT_BACKEND")
        if raw:
            from celerytool.cli.settings import finish_url

            return finish_url(parse_url(raw), "backend", self)
        from celerytool.backends import backend_for_broker

        url = backend_for_broker(self.broker_url)
        if url is not None:
            return url
        raise UsageError("no result backend: give --backend URL (or CELERY_RESULT_BACKEND)")

    def broker_options(self, **extra: Any) -> BrokerOptions:
        from celerytool.brokers.base import DEFAULT_PRIORITY_STEPS, DEFAULT_SEP, BrokerOptions
        from celerytool.codecs.limits import DEFAULT_LIMITS, Limits

        return BrokerOptions(
            global_keyprefix=self.global_keyprefix or "",
            sep=self.sep or DEFAULT_SEP,  # unescaped by the option type
            priority_steps=self.priority_steps or DEFAULT_PRIORITY_STEPS,
            connect_timeout=self.connect_timeout or 5.0,
            limits=Limits.for_size(self.max_size) if self.max_size else DEFAULT_LIMITS,
            management_url=self.management_url,
            **extra,
        )

    def open_broker(self, url: BrokerURL | None = None, **extra: Any) -> Broker:
        from celerytool.brokers import open_broker

        broker = open_broker(url or self.broker_url, self.broker_options(**extra))
        self.track(broker)
        return broker

    def open_backend(self, keyprefix: str | None = None,
                     table_names: dict[str, str] | None = None) -> ResultBackend:
        from celerytool.backends import open_backend

        backend = open_backend(self.backend_url, keyprefix=keyprefix or "", limits=self.limits(),
                               connect_timeout=self.connect_timeout or 5.0, table_names=table_names)
        self.track(backend)
        return backend

    def track(self, resource: Resource) -> None:
        """Close ``resource`` (and show its warnings) when the command ends."""
        self._opened.append(resource)

    def limits(self) -> Limits:
        return self.broker_options().limits

    def emit(self, records: Iterable[Any], kind: str) -> int:
        from celerytool.render import emit

        return emit(records, self.fmt, kind, full_ids=self.full_ids)

    def emit_one(self, record: Any, kind: str) -> None:
        from celerytool.render import emit_one

        emit_one(record, self.fmt, kind)

    def flush_warnings(self) -> None:
        from celerytool.render import warn

        for b in self._opened:
            for w in getattr(b, "warnings", []):
                warn(w)
            if hasattr(b, "warnings"):
                b.warnings.clear()

    def close(self) -> None:
        self.flush_warnings()
        for b in self._opened:
            try:
                b.close()
            except Exception:
                pass

    @staticmethod
    def stderr_is_tty() -> bool:
        return sys.stderr.isatty()
