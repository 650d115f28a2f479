"""A DB-API connection for SQL text of our own, without SQLAlchemy where it can (``SqlLink``).

beat reads django-celery-beat's tables with one query of its own, and must end within 1 s:
importing SQLAlchemy is ~0.2 s of it. A PostgreSQL URL for psycopg (the db extra's driver) is
opened straight from the URL, with the arguments SQLAlchemy's psycopg dialect would give;
any other URL goes through ``sql.create_engine``'s raw connection, which knows every dialect
and driver. Either way the session is ``sql.session_args``'s and the errors ``sql``'s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from celerytool.backends.sql import (
    create_engine,
    engine_url,
    installed,
    load_sqlalchemy,
    query_failure,
    session_args,
    unreachable,
)
from celerytool.urls import BrokerURL

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PSYCOPG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class DbCursor(Protocol):
    """What ``SqlLink.execute`` returns of a DB-API (PEP 249) cursor: psycopg's, or the
    driver's through SQLAlchemy's raw connection."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, operation: Any, parameters: Any = ..., /) -> object: ...

    def fetchall(self) -> Sequence[Any]: ...


class DbConnection(Protocol):
    """A DB-API (PEP 249) connection: psycopg's, or SQLAlchemy's raw connection."""

    def cursor(self) -> DbCursor: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def psycopg_args(url: BrokerURL, connect_timeout: float) -> dict[str, Any] | None:
    """``psycopg.connect``'s arguments for ``url`` as SQLAlchemy's psycopg dialect makes them
    (user, password, host, port, dbname, the query's options, then ``session_args``); None
    unless the URL is plainly PostgreSQL with psycopg installed (another driver, several hosts,
    a repeated or host / port query option: SQLAlchemy's rules apply)."""
    raw = url.sqlalchemy_url
    if raw.split("://", 1)[0].lower() not in PSYCOPG_SCHEMES or not installed("psycopg"):
        return None
    parts = urlsplit(raw)
    query = parse_qsl(parts.query)  # blank values left out, as SQLAlchemy does
    names = {k for k, _ in query}
    if "," in parts.netloc or "#" in raw or len(names) < len(query) or names & {"host", "port"}:
        return None
    args = {"user": url.username, "password": url.password, "host": parts.hostname and url.host,
            "port": url.port, "dbname": unquote(parts.path[1:])}
    args = {k: v for k, v in args.items() if v}  # what SQLAlchemy leaves out: empty or unset
    return {**args, **dict(query), **session_args("postgresql", "psycopg", connect_timeout)}


def _paramstyled(sql: str, params: tuple[Any, ...], style: str) -> tuple[str, Any]:
    """``sql`` written with ``%s`` placeholders, in the driver's DB-API paramstyle."""
    if style in ("format", "pyformat"):
        return sql, params
    if style == "qmark":
        return sql.replace("%s", "?"), params
    prefix = {"numeric": ":", "numeric_dollar": "$", "named": ":p"}[style]
    pieces = sql.split("%s")
    text = pieces[0] + "".join(f"{prefix}{i}{piece}" for i, piece in enumerate(pieces[1:], 1))
    return text, ({f"p{i}": v for i, v in enumerate(params, 1)} if style == "named" else params)


class SqlLink:
    """One DB-API connection for SQL text of the caller's own (beat reads django-celery-beat's
    tables with one query). A PostgreSQL URL for psycopg (the db extra's driver) is opened
    straight from the URL (``psycopg_args``): importing SQLAlchemy is ~0.2 s of a command that
    must end in 1 s. Any other URL goes through ``create_engine``'s raw connection, which knows
    every dialect and driver. Either way the session is ``session_args``'s, the errors ours."""

    def __init__(self, url: BrokerURL, what: str, *, connect_timeout: float = 5.0,
                 readonly: bool = True) -> None:
        self.url = url
        self.what = what
        self.connect_timeout = connect_timeout
        self.readonly = readonly
        self.direct = psycopg_args(url, connect_timeout)
        self.target = engine_url(url) if self.direct is None else None  # a missing extra: a usage error now
        self.backend: str = "postgresql" if self.target is None else self.target.get_backend_name()
        self.dbapi: Any = None  # the driver's module: its Error classes and paramstyle
        self._engine: Engine | None = None

    @cached_property
    def conn(self) -> DbConnection:
        if self.direct is not None:
            import psycopg

            self.dbapi = psycopg
            try:
                return psycopg.connect(**self.direct)
            except psycopg.Error as exc:
                raise unreachable(self.url, self.what, exc) from None
        assert self.target is not None
        sa = load_sqlalchemy()
        engine = self._engine = create_engine(self.target, connect_timeout=self.connect_timeout,
                                              readonly=self.readonly)
        self.dbapi = engine.dialect.loaded_dbapi
        try:
            return engine.raw_connection()
        except (sa.exc.DBAPIError, self.dbapi.Error) as exc:  # the pool hands the driver's own errors on
            raise unreachable(self.url, self.what, exc) from None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> DbCursor:
        """A cursor that ran ``sql`` (placeholders: ``%s``); inside ``errors()``."""
        cursor = self.conn.cursor()
        if params:
            cursor.execute(*_paramstyled(sql, params, self.dbapi.paramstyle))
        else:
            cursor.execute(sql)
        return cursor

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            if self.dbapi is None or not isinstance(exc, self.dbapi.Error):
                raise
            with contextlib.suppress(Exception):
                self.conn.rollback()
            lost = isinstance(exc, self.dbapi.InterfaceError) or bool(getattr(self.conn, "broken", False))
            raise query_failure(self.url, self.what, exc, lost=lost) from None

    def close(self) -> None:
        if "conn" in self.__dict__:
            with contextlib.suppress(Exception):
                self.conn.close()
        if self._engine is not None:
            self._engine.dispose()
