"""``forget`` on database result backends (Celery's ``db+...``, django-celery-results).

The selection becomes the ``WHERE`` of a keyset walk over the row ids:
``SELECT id ... WHERE <filters> AND id > :last ORDER BY id LIMIT n``, then
``DELETE ... WHERE id IN (...)`` and a commit per batch, so a large delete
never holds one long transaction and Ctrl-C stops between batches.  A task
glob that SQL ``LIKE`` cannot express exactly is narrowed by ``LIKE`` and
matched exactly in Python.  There is no TTL in a table: ``expire`` is Redis's.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from celerytool.backends.criteria import Criteria, Progress, ResultOp
from celerytool.errors import UsageError

if TYPE_CHECKING:
    from types import ModuleType

    from sqlalchemy.engine import URL, Connection
    from sqlalchemy.sql import TableClause

    from celerytool.backends.layout import Layout, Table

BATCH = 5000
ID_CHUNK = 1000


class SqlResultChanges:
    """``forget`` (and the refusal of ``expire``) for ``SqlResultBackend`` (its connection,
    tables and layout)."""

    if TYPE_CHECKING:  # SqlResultBackend's own (sql.py)
        sa: ModuleType  # sqlalchemy
        layout: Layout
        target: URL

        @property
        def conn(self) -> Connection: ...

        def table(self, role: str) -> TableClause: ...

        def errors(self) -> AbstractContextManager[None]: ...

    def expire(self, criteria: Criteria, ttl: float, *, only_without_ttl: bool, control: Progress) -> ResultOp:
        raise UsageError("expire sets Redis TTLs; rows of a database result backend have none "
                         "(use forget --older-than, or Celery's celery.backend_cleanup task)")

    def forget(self, criteria: Criteria, control: Progress) -> ResultOp:
        result = ResultOp("forget", dry_run=control.dry_run)
        cutoff = None if criteria.older_than is None else \
            (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=criteria.older_than)).replace(tzinfo=None)
        roles = ["task"] if (criteria.statuses or criteria.tasks) else ["task", "group"]
        with self.errors():
            for role in roles:
                ids = list(criteria.ids)
                for start in range(0, max(len(ids), 1), ID_CHUNK):
                    self._walk(role, criteria, ids[start:start + ID_CHUNK] if ids else None, cutoff,
                               control, result)
                    if result.interrupted:
                        return result
        return result

    def _walk(self, role: str, criteria: Criteria, ids: list[str] | None, cutoff: dt.datetime | None,
              control: Progress, result: ResultOp) -> None:
        sa, conn = self.sa, self.conn
        table = self.table(role)
        spec: Table = getattr(self.layout, role)
        key = table.c[spec.id_column]
        pk = table.c.id if "id" in table.c else key
        where: list[Any] = []
        exact = True
        name = None
        if ids is not None:
            where.append(key.in_(ids))
        if role == "task" and criteria.statuses:
            where.append(table.c.status.in_(sorted(criteria.statuses)))
        if role == "task" and criteria.tasks:
            if self.layout.name_column not in table.c:
                return  # no task names stored (result_extended off): nothing matches
            name = table.c[self.layout.name_column]
            likes = [glob_to_like(g, self.target.get_backend_name()) for g in criteria.tasks]
            exact = all(ok for _, ok in likes)
            where.append(sa.or_(*(name.like(like, escape="\\") for like, _ in likes)))
        if cutoff is not None:
            where.append(table.c.date_done < cutoff)  # naive UTC, as Celery stores it
        columns = [pk] + ([name] if name is not None and not exact else [])
        last: Any = None
        while True:
            if control.stop():
                result.interrupted = True
                return
            stmt = sa.select(*columns).where(*where)
            if last is not None:
                stmt = stmt.where(pk > last)
            rows = conn.execute(stmt.order_by(pk).limit(BATCH)).all()
            if not rows:
                conn.rollback()
                return
            last = rows[-1][0]
            result.examined += len(rows)
            chosen = [r[0] for r in rows if exact or any(fnmatch.fnmatchcase(r[1] or "", g) for g in criteria.tasks)]
            result.matched += len(chosen)
            if chosen and not control.dry_run:
                deleted = conn.execute(sa.delete(table).where(pk.in_(chosen)))
                result.done += int(deleted.rowcount or 0)
            conn.commit()
            control.tick(len(rows))


def glob_to_like(glob: str, backend: str) -> tuple[str, bool]:
    """fnmatch glob -> (LIKE pattern, whether LIKE matches exactly what fnmatchcase does)."""
    out, exact, i, n = [], backend == "postgresql", 0, len(glob)  # LIKE ignores case on MySQL, SQLite
    while i < n:
        ch = glob[i]
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch == "[":
            j = i + 1
            j += glob[j:j + 1] == "!"
            j += glob[j:j + 1] == "]"
            end = glob.find("]", j)
            if end < 0:
                out.append("[")  # no closing bracket: fnmatch takes it literally
            else:
                out.append("_")  # one character of a class: narrows, matched exactly afterwards
                exact = False
                i = end
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out), exact
