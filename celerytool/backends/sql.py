"""Read result tables with SQLAlchemy Core: Celery's database backend and django-celery-results.

No ORM models: each table is declared with exactly the columns its
``Layout`` names that the table really has (one ``SELECT * ... WHERE 1=0``
tells which).  ``results`` filters become the query's ``WHERE``,
``ORDER BY date_done DESC`` and ``LIMIT``; ``--wait`` polls every 0.5 s as
Celery does.  SQLAlchemy and the drivers are the optional ``db`` extra.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from collections.abc import Callable, Iterator
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from celerytool.backends.layout import Layout, Row, Table
from celerytool.backends.query import ResultQuery, poll_wait, with_group_status
from celerytool.backends.sql_changes import SqlResultChanges, glob_to_like
from celerytool.codecs.limits import DEFAULT_LIMITS, Limits
from celerytool.errors import BrokerUnavailable, CeleryToolError, DataError, NotFound, UsageError
from celerytool.model import TaskResult
from celerytool.urls import BrokerURL

if TYPE_CHECKING:  # SQLAlchemy is the optional db extra, imported on first use
    import sqlite3

    import psycopg
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.pool import ConnectionPoolEntry
    from sqlalchemy.sql import Select, TableClause

EXTRA = "pip install 'celerytool[db]'"
CHUNK = 500
# a dialect without a driver named -> the driver the db extra installs (else SQLAlchemy's default)
DEFAULT_DRIVERS = {"postgresql": ("psycopg", "psycopg2"), "mysql": ("pymysql", "MySQLdb"),
                   "mariadb": ("pymysql", "MySQLdb")}
DRIVER_MODULES = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql", "mysqldb": "MySQLdb",
                  "mysqlconnector": "mysql.connector", "asyncpg": "asyncpg", "pg8000": "pg8000"}


def load_sqlalchemy() -> ModuleType:
    try:
        import sqlalchemy
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "sqlalchemy":
            raise
        raise UsageError(f"database result backends need SQLAlchemy and a driver: {EXTRA}") from None
    return sqlalchemy


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def engine_url(url: BrokerURL) -> URL:
    """The SQLAlchemy URL, with the db extra's driver when the URL names none."""
    sa = load_sqlalchemy()
    try:
        target = sa.engine.make_url(url.sqlalchemy_url)
    except Exception as exc:  # ArgumentError, ValueError
        raise UsageError(f"not a database URL: {url.redacted()} ({exc})") from None
    target = _userinfo_as_parsed(url, target)
    backend, _, driver = target.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if not driver and backend in DEFAULT_DRIVERS:
        ours, theirs = DEFAULT_DRIVERS[backend]
        if installed(ours):
            driver = ours
        elif not installed(theirs):
            raise UsageError(f"no {backend} driver installed: {EXTRA}")
    module = DRIVER_MODULES.get(driver)
    if module and not installed(module):
        raise UsageError(f"the {driver} driver is not installed: {EXTRA}")
    target = target.set(drivername=f"{backend}+{driver}" if driver else backend)
    try:
        target.get_dialect()  # imports the dialect, not the driver: an unknown name ends here
    except sa.exc.NoSuchModuleError:
        raise UsageError(f"not a database URL: {url.redacted()} "
                         f"(SQLAlchemy knows no database {target.drivername!r})") from None
    return target


def _userinfo_as_parsed(url: BrokerURL, target: URL) -> URL:
    """User, password and host as ``urls`` parsed them: up to the LAST '@'.

    SQLAlchemy ends the password at the first '@', so ``user:SECRET@TAIL@host`` connected to
    a host named ``TAIL@host`` and its error showed the password's tail.
    """
    rest = url.sqlalchemy_url.split("://", 1)[-1]
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if netloc.count("@") <= 1:
        return target
    return target.set(username=url.username, password=url.password, host=url.host, port=url.port)


# lock_not_available, query_canceled (statement_timeout); MySQL / MariaDB: lock wait timeout,
# statement time exceeded (max_statement_time / max_execution_time)
TIMEOUT_SQLSTATES = {"55P03", "57014"}
TIMEOUT_MYSQL_CODES = {1205, 1969, 3024}


def _timed_out(exc: BaseException) -> bool:
    """Whether a DBAPI error says a lock wait or a statement ran out of time."""
    orig = getattr(exc, "orig", None) or exc  # SQLAlchemy's wrapper, or the driver's own error
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in TIMEOUT_SQLSTATES:
        return True
    args: Any = getattr(orig, "args", ())
    return bool(args) and args[0] in TIMEOUT_MYSQL_CODES


def _after_handshake(reply_timeout: float) -> Callable[[Any, ConnectionPoolEntry], None]:
    def raise_timeouts(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:  # a PyMySQL connection
        # PyMySQL reads these before every socket read / write; it has no public setter
        dbapi_conn._read_timeout = dbapi_conn._write_timeout = reply_timeout

    return raise_timeouts


def _binary_results(dbapi_conn: psycopg.Connection[Any], record: ConnectionPoolEntry) -> None:
    """psycopg 3 cursors that receive rows in PostgreSQL's binary format: a ``bytea`` result
    arrives as its bytes, not as hex text twice its size (a 50 MB result peaked at 346 MB,
    most of it libpq's hex copy)."""
    import psycopg
    from psycopg.pq import Format

    class BinaryCursor(psycopg.Cursor):
        def __init__(self, connection: psycopg.Connection[Any], *, row_factory: Any = None) -> None:
            super().__init__(connection, row_factory=row_factory)
            self.format = Format.BINARY

    dbapi_conn.cursor_factory = BinaryCursor


def reply_timeout(connect_timeout: float) -> float:
    """Seconds one statement's reply may take."""
    return max(10.0, 2 * connect_timeout)


def session_args(backend: str, driver: str, connect_timeout: float) -> dict[str, Any]:
    """The driver's connect arguments: the session every connection of ours gets (engines,
    and ``sql_link``'s own psycopg connection)."""
    timeout = max(1, round(connect_timeout))
    if backend == "postgresql":
        args: dict[str, Any] = {"connect_timeout": timeout, "application_name": "celerytool"}
        if driver in ("psycopg", "psycopg2"):
            # naive bounds compare as UTC, as Celery stores them; a locked table (another
            # session's LOCK TABLE, a long migration) is given --connect-timeout, a statement
            # the reply timeout, instead of waiting for good
            args["options"] = (f"-c TimeZone=UTC -c lock_timeout={int(connect_timeout * 1000)} "
                               f"-c statement_timeout={int(reply_timeout(connect_timeout) * 1000)}")
        return args
    if backend in ("mysql", "mariadb"):
        # PyMySQL reads the server's greeting with read_timeout (None: forever): the first
        # answer is part of connecting, later replies get the reply timeout (_after_handshake)
        return {"connect_timeout": timeout, "read_timeout": connect_timeout, "write_timeout": connect_timeout,
                # a row or table lock is waited for --connect-timeout, not 50 s / a year
                "init_command": f"SET SESSION innodb_lock_wait_timeout={timeout}, lock_wait_timeout={timeout}"}
    return {}


def create_engine(target: URL, *, connect_timeout: float, readonly: bool) -> Engine:
    """The engine for ``target`` (``engine_url``'s): no pool, our session settings."""
    sa = load_sqlalchemy()
    backend, driver = target.get_backend_name(), target.get_driver_name()
    if backend == "sqlite":
        return sa.create_engine("sqlite://", creator=_sqlite_creator(target, connect_timeout, readonly),
                                poolclass=sa.pool.NullPool)
    engine = sa.create_engine(target, connect_args=session_args(backend, driver, connect_timeout),
                              poolclass=sa.pool.NullPool)
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        sa.event.listen(engine, "connect", _after_handshake(reply_timeout(connect_timeout)))
    if backend == "postgresql" and driver == "psycopg":
        sa.event.listen(engine, "connect", _binary_results)
    return cast("Engine", engine)


def _sqlite_creator(target: URL, connect_timeout: float, readonly: bool) -> Callable[[], sqlite3.Connection]:
    import sqlite3
    from urllib.parse import quote

    path = target.database
    if not path or path == ":memory:":
        raise UsageError("db+sqlite:/// needs the path of the database file, e.g. db+sqlite:///results.sqlite")
    if not os.path.exists(path):
        raise NotFound(f"no SQLite database at {path}")
    uri = f"file:{quote(os.path.abspath(path))}?mode={'ro' if readonly else 'rw'}"
    return lambda: sqlite3.connect(uri, uri=True, timeout=connect_timeout, check_same_thread=False)


def _reason(url: BrokerURL, exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return url.scrub(text[0].strip() if text else type(orig).__name__)


def _late(url: BrokerURL, what: str, exc: BaseException) -> BrokerUnavailable:
    """A lock wait or a statement past its time (exit 69)."""
    return BrokerUnavailable(f"the {what} at {url.redacted()} did not answer in time "
                             f"(a lock held by another session?): {_reason(url, exc)}")


def query_failure(url: BrokerURL, what: str, exc: BaseException, *, lost: bool) -> CeleryToolError:
    """A statement's driver error as ours: out of time or connection lost (69), else failed."""
    if _timed_out(exc):
        return _late(url, what, exc)
    if lost:
        return BrokerUnavailable(f"lost the {what} at {url.redacted()}: {_reason(url, exc)}")
    return CeleryToolError(f"{what} query failed: {_reason(url, exc)}")


def unreachable(url: BrokerURL, what: str, exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"cannot reach the {what} at {url.redacted()}: {_reason(url, exc)}")


class SqlResultBackend(SqlResultChanges):
    def __init__(self, url: BrokerURL, layout: Layout, *, limits: Limits = DEFAULT_LIMITS,
                 connect_timeout: float = 5.0, readonly: bool = True) -> None:
        self.url = url
        self.kind = url.kind
        self.layout = layout
        self.limits = limits
        self.connect_timeout = connect_timeout
        self.readonly = readonly
        self.target = engine_url(url)  # a missing extra is a usage error before anything else
        self.sa = load_sqlalchemy()
        self._tables: dict[str, TableClause] = {}

    # -- connection ----------------------------------------------------------------------
    @property
    def reply_timeout(self) -> float:
        """Seconds one statement's reply may take."""
        return reply_timeout(self.connect_timeout)

    @cached_property
    def engine(self) -> Engine:
        return create_engine(self.target, connect_timeout=self.connect_timeout, readonly=self.readonly)

    @cached_property
    def conn(self) -> Connection:
        try:
            return self.engine.connect()
        except self.sa.exc.DBAPIError as exc:
            raise unreachable(self.url, self.layout.what, exc) from None

    def _reason(self, exc: BaseException) -> str:
        return _reason(self.url, exc)

    def _late(self, exc: BaseException) -> BrokerUnavailable:
        return _late(self.url, self.layout.what, exc)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except self.sa.exc.DBAPIError as exc:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            lost = exc.connection_invalidated or isinstance(exc, self.sa.exc.InterfaceError)
            raise query_failure(self.url, self.layout.what, exc, lost=lost) from None

    def close(self) -> None:
        if "conn" in self.__dict__:
            with contextlib.suppress(Exception):
                self.conn.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    # -- tables --------------------------------------------------------------------------
    def table(self, role: str) -> TableClause:
        """The ``task`` or ``group`` table with the layout's columns it has (probed once)."""
        if role in self._tables:
            return self._tables[role]
        sa = self.sa
        spec: Table = getattr(self.layout, role)
        bare = sa.table(spec.name, schema=spec.schema)
        conn = self.conn
        try:
            present = set(conn.execute(sa.select(sa.text("*")).select_from(bare).where(sa.false())).keys())
        except self.sa.exc.DBAPIError as exc:
            conn.rollback()
            if _timed_out(exc):
                raise self._late(exc) from None
            if not self._has_table(spec):
                raise NotFound(f"table {spec.shown} does not exist in {self.url.redacted()} "
                               f"({self.layout.missing_hint})") from None
            raise CeleryToolError(f"cannot read table {spec.shown}: {self._reason(exc)}") from None
        for needed in (spec.id_column, "status") if role == "task" else (spec.id_column,):
            if needed not in present:
                raise DataError(f"table {spec.shown} is not a {self.layout.what} table (no column {needed})")
        types = {"int": sa.Integer, "str": sa.String, "text": sa.Text, "binary": sa.LargeBinary,
                 "datetime": sa.DateTime}
        columns = [sa.column(name, types[kind]()) for name, kind in spec.columns.items() if name in present]
        self._tables[role] = sa.table(spec.name, *columns, schema=spec.schema)
        return self._tables[role]

    def _has_table(self, spec: Table) -> bool:
        try:
            return bool(self.sa.inspect(self.conn).has_table(spec.name, schema=spec.schema))
        except self.sa.exc.DBAPIError:
            self.conn.rollback()
            return True  # cannot tell: report the original error

    # -- reading -------------------------------------------------------------------------
    def _rows(self, role: str, ids: list[str]) -> dict[str, Row]:
        table = self.table(role)
        key = table.c[getattr(self.layout, role).id_column]
        found: dict[str, Row] = {}
        with self.errors():
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                for row in self.conn.execute(self.sa.select(table).where(key.in_(chunk))).mappings():
                    found[row[key.name]] = row
            self.conn.rollback()  # end the read transaction: --wait must see new commits
        return found

    def get_many(self, ids: list[str]) -> list[TaskResult]:
        """One result per id: the task row, else the group row, else PENDING."""
        if not ids:
            return []
        unique = list(dict.fromkeys(ids))
        tasks = self._rows("task", unique)
        missing = [i for i in unique if i not in tasks]
        groups = self._rows("group", missing) if missing else {}
        out: dict[str, TaskResult] = {}
        for i in unique:  # each raw row let go once decoded: a large value is held once
            if i in tasks:
                out[i] = self.layout.task_row(i, tasks.pop(i), self.limits)
            elif i in groups:
                out[i] = with_group_status(self.layout.group_row(i, groups[i], self.limits), self.get_many)
            else:
                out[i] = TaskResult(id=i, status="PENDING")
        return [out[i] for i in ids]

    def get(self, task_id: str) -> TaskResult:
        return self.get_many([task_id])[0]

    def wait(self, ids: list[str], timeout: float | None,
             on_change: Callable[[TaskResult], None] | None = None) -> tuple[list[TaskResult], bool]:
        return poll_wait(self.get_many, ids, timeout, on_change)

    def select(self, query: ResultQuery) -> list[TaskResult]:
        """``results``: WHERE status / name / date_done, ORDER BY date_done DESC, LIMIT n."""
        sa = self.sa
        table = self.table("task")
        done = table.c.date_done
        stmt = sa.select(table)
        if query.statuses:
            stmt = stmt.where(table.c.status.in_(sorted(query.statuses)))
        exact = True
        if query.task_globs:
            if self.layout.name_column not in table.c:
                return []  # a table without result_extended has no task names
            stmt, exact = self._where_task(stmt, table, query.task_globs)
        if query.since is not None:
            stmt = stmt.where(done >= query.since.replace(tzinfo=None))  # naive UTC, as Celery stores
        key = table.c[self.layout.task.id_column].name
        out: list[TaskResult] = []
        # dated first, newest first (the date_done index serves it), then those without a date
        # the row id breaks ties: MySQL keeps whole seconds; ids grow with the first write of a task
        tie = [table.c.id.desc()] if "id" in table.c else []
        parts = [stmt.where(done.isnot(None)).order_by(done.desc(), *tie)]
        if query.since is None:
            parts.append(stmt.where(done.is_(None)).order_by(*tie))
        with self.errors():
            for part in parts:
                left = query.limit - len(out)
                if left <= 0:
                    break
                if exact:
                    rows = self.conn.execute(part.limit(left)).mappings()
                else:  # LIKE only narrows (case, [...] classes): stream and match exactly
                    rows = self.conn.execution_options(stream_results=True, yield_per=CHUNK).execute(part).mappings()
                for row in rows:
                    result = self.layout.task_row(row[key], row, self.limits)
                    if exact or query.matches(result):
                        out.append(result)
                        if len(out) >= query.limit:
                            break
                rows.close()
            self.conn.rollback()
        return out

    def _where_task(self, stmt: Select[Any], table: TableClause,
                    globs: tuple[str, ...]) -> tuple[Select[Any], bool]:
        """``stmt`` narrowed to task names LIKE any of ``globs``; and whether LIKE is exact for all."""
        likes = [glob_to_like(g, self.target.get_backend_name()) for g in globs]
        column = table.c[self.layout.name_column]
        return (stmt.where(self.sa.or_(*(column.like(like, escape="\\") for like, _ in likes))),
                all(exact for _, exact in likes))

    def stream(self, query: ResultQuery) -> Iterator[TaskResult]:
        """Every result ``query`` matches (``failures``, ``retry``): one query, streamed, none kept."""
        sa = self.sa
        table = self.table("task")
        stmt = sa.select(table)
        if query.statuses:
            stmt = stmt.where(table.c.status.in_(sorted(query.statuses)))
        if query.task_globs:
            if self.layout.name_column not in table.c:
                return  # a table without result_extended has no task names
            stmt, _exact = self._where_task(stmt, table, query.task_globs)
        if query.since is not None:
            stmt = stmt.where(table.c.date_done >= query.since.replace(tzinfo=None))
        key = table.c[self.layout.task.id_column].name
        with self.errors():
            rows = self.conn.execution_options(stream_results=True, yield_per=CHUNK).execute(stmt).mappings()
            try:
                for row in rows:
                    result = self.layout.task_row(row[key], row, self.limits)
                    if query.matches(result):
                        yield result
            finally:
                rows.close()
                self.conn.rollback()
