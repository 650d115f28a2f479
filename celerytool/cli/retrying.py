"""The work behind ``celerytool retry``: select stored failures, send them again, forget the old ones."""

from __future__ import annotations

import datetime as dt
import fnmatch
import itertools
import json
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from celerytool.errors import CeleryToolError, UsageError
from celerytool.model import TaskResult
from celerytool.render import note, warn
from celerytool.sending.build import arg_texts
from celerytool.sending.resend import RETRY_HEADER, RetryPlan, Skipped, plan

if TYPE_CHECKING:
    from celerytool.backends.query import ResultBackend, ResultQuery
    from celerytool.cli.app import App
    from celerytool.sending import TaskSpec
    from celerytool.sending.pipeline import Pipeline

CHUNK = 1000  # ids read from the backend per round trip
SHOW_SKIPPED = 20  # skipped ids listed one per line; beyond, a count


class Retry:
    def __init__(self, app: App, *, backend_keyprefix: str | None,
                 backend_table_names: dict[str, str] | None) -> None:
        self.app = app
        self.keyprefix = backend_keyprefix
        self.table_names = backend_table_names
        self._backend: ResultBackend | None = None

    @property
    def backend(self) -> ResultBackend:
        if self._backend is None:
            self._backend = self.app.open_backend(self.keyprefix, self.table_names)
        return self._backend

    # -- selection ---------------------------------------------------------------------------
    def given_ids(self, ids: tuple[str, ...], from_file: TextIO | None) -> list[str] | None:
        """Ids from the arguments, ``-`` (stdin) and --from, in order, each once; None: none given."""
        import sys

        streams: list[Iterable[str]] = []
        words = []
        for word in ids:
            if word == "-":
                streams.append(sys.stdin)
            else:
                words.append(word)
        if from_file is not None:
            streams.append(from_file)
        if not words and not streams:
            return None
        out = list(words)
        for stream in streams:
            out.extend(_ids_in(stream))
        return list(dict.fromkeys(i for i in out if i))

    def select(self, given: list[str] | None, *, statuses: frozenset[str], task_globs: tuple[str, ...],
               exceptions: tuple[str, ...], since: float | None, queue: str | None,
               limit: int | None) -> tuple[list[RetryPlan], list[Skipped]]:
        """Every selected failure, planned or skipped (for a prompt or a dry run: all, then act)."""
        plans: list[RetryPlan] = []
        skipped: list[Skipped] = []
        for outcome in self.selected(given, statuses=statuses, task_globs=task_globs, exceptions=exceptions,
                                     since=since, queue=queue):
            if isinstance(outcome, Skipped):
                skipped.append(outcome)
            else:
                plans.append(outcome)
                if limit is not None and len(plans) >= limit:
                    break
        return plans, skipped

    def selected(self, given: list[str] | None, *, statuses: frozenset[str], task_globs: tuple[str, ...],
                 exceptions: tuple[str, ...], since: float | None, queue: str | None,
                 ahead: bool = False) -> Iterator[RetryPlan | Skipped]:
        """Each selected failure as it is read: its plan, or why it is skipped; each id once.

        ``ahead``: read in a second process (``readahead``, started now) while the caller
        sends, when the backend is not open yet in this one (the child opens its own
        connections).  Close the iterator when done with it early.
        """
        from celerytool.readahead import read_ahead

        args = (given, statuses, task_globs, exceptions, since, queue)
        if not ahead or self._backend is not None:
            return self._outcomes(*args)
        from celerytool.backends import preload

        preload(self.app.backend_url)  # imported once, for both processes
        return _unpacking(read_ahead(lambda: map(_packed, self._outcomes(*args))))

    def _outcomes(self, given: list[str] | None, statuses: frozenset[str], task_globs: tuple[str, ...],
                  exceptions: tuple[str, ...], since: float | None,
                  queue: str | None) -> Iterator[RetryPlan | Skipped]:
        from celerytool.backends.query import ResultQuery

        cutoff = None if since is None else dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=since)
        query = ResultQuery(statuses=statuses, task_globs=task_globs, since=cutoff)
        if given is not None:
            results: Iterable[TaskResult] = self._read(given)
        else:
            results = self.backend.stream(query)
        seen: set[str] = set()
        for r in results:
            if r.id in seen:  # SCAN can return a key twice; an id given twice is sent once
                continue
            seen.add(r.id)
            if given is not None and r.error is None and r.status in statuses and not _wanted(query, r):
                yield Skipped(r.id, "does not match --task / --since")
                continue
            if exceptions and r.error is None and r.status in statuses and not _raised(r, exceptions):
                if given is not None:
                    yield Skipped(r.id, f"raised {_exception(r) or 'no exception'}, "
                                        f"not {' or '.join(exceptions)}")
                continue
            yield plan(r, statuses=statuses, queue=queue)

    def _read(self, ids: list[str]) -> Iterator[TaskResult]:
        for start in range(0, len(ids), CHUNK):
            yield from self.backend.get_many(ids[start:start + CHUNK])

    # -- sending -----------------------------------------------------------------------------
    def run(self, plans: list[RetryPlan], skipped: list[Skipped], options: dict[str, Any], *,
            same_id: bool, forget: bool, yes: bool, dry_run: bool) -> int:
        from celerytool.cli.guard import confirm

        _report_skipped(skipped)
        if not plans:
            return _none_sent(skipped)
        sender, defaults = self._sender(options)
        if same_id:
            for p in plans:
                p.new_id = p.old_id
        if dry_run:
            self.app.emit(plans, "retry")
            note(f"would send {len(plans)} task(s) again to {self.app.broker_url.redacted()}"
                 + (f"; {len(skipped)} skipped" if skipped else ""))
            return 0
        confirm(yes, f"Send {len(plans)} failed task(s) again to {self.app.broker_url.redacted()}?")
        return self._send(sender, defaults, plans, same_id, len(plans), forget, skipped)

    def _sender(self, options: dict[str, Any]) -> tuple[Pipeline, TaskSpec]:
        from celerytool.cli.send import pipeline

        pipe = pipeline(self.app)
        return pipe, pipe.defaults(options, ())

    def run_stream(self, outcomes: Iterable[RetryPlan | Skipped], options: dict[str, Any], *, limit: int | None,
                   same_id: bool, forget: bool) -> int:
        """``--yes``: send each plan as it is read (nothing to confirm first); report skips after."""
        skipped: list[Skipped] = []

        def plans() -> Iterator[RetryPlan]:
            count = 0
            for outcome in outcomes:
                if isinstance(outcome, Skipped):
                    skipped.append(outcome)
                    continue
                if same_id:
                    outcome.new_id = outcome.old_id
                yield outcome
                count += 1
                if limit is not None and count >= limit:
                    return

        try:
            sender, defaults = self._sender(options)
            sender.warm_up()  # Celery's import, while the reading process reads its first batch
            return self._send(sender, defaults, plans(), same_id, None, forget, skipped, skips_shown=False)
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:  # a limit or an error: the reading process stops
                close()

    def _send(self, pipe: Pipeline, defaults: TaskSpec, plans: Iterable[RetryPlan], same_id: bool,
              total: int | None, forget: bool, skipped: list[Skipped], *, skips_shown: bool = True) -> int:
        """Send ``plans``, each listed on stdout once published (memory stays flat); then the
        ids that could not be retried (unless ``skips_shown``), the summary, and ``--forget``.
        An error stops it, saying how many went out."""
        from celerytool.cli.send import listed_while_sent

        failed: list[CeleryToolError] = []
        forgettable: list[str] = []
        sent = self._sending(pipe, defaults, plans, same_id, total, failed)
        first = next(sent, None)
        if first is None and not failed:
            if not skips_shown:
                _report_skipped(skipped)
            return _none_sent(skipped)

        def listed() -> Iterator[RetryPlan]:
            for p in itertools.chain([first] if first is not None else [], sent):
                if forget:
                    forgettable.append(p.old_id)
                yield p

        count = listed_while_sent(self._emit_sent, listed())
        if not skips_shown:
            _report_skipped(skipped)
        if failed:
            of = f" of {total}" if total is not None else ""
            raise CeleryToolError(f"{failed[0].message}; {count}{of} task(s) were sent again "
                                  "(listed on stdout)", failed[0].exit_code)
        note(f"sent {count} task(s) again" + (f"; {len(skipped)} skipped" if skipped else ""))
        if forget:
            self._forget(forgettable)
        return 0

    def _sending(self, pipe: Pipeline, defaults: TaskSpec, plans: Iterable[RetryPlan], same_id: bool,
                 total: int | None, failed: list[CeleryToolError]) -> Iterator[RetryPlan]:
        """Each plan once its task is published (``new_id`` set), in order; an error ends it after
        the plans that went out, and is put in ``failed``."""
        from celerytool.cli.send import counting
        from celerytool.sending.pipeline import BatchStopped, Prepared

        given: deque[RetryPlan] = deque()  # handed to the pipeline, not yet published, in order

        def items() -> Iterator[Prepared]:
            for p in plans:
                given.append(p)
                yield Prepared(p.task, p.queue, p.old_id if same_id else None, p.args, p.kwargs, p.old_id,
                               {RETRY_HEADER: p.old_id}, p.texts)

        try:
            with counting(self.app, pipe, "sending again", total):
                for s in pipe.send_many(defaults, items()):
                    p = given.popleft()
                    p.new_id, p.queue = s.id, s.queue or p.queue
                    yield p
        except CeleryToolError as exc:
            for s in exc.sent if isinstance(exc, BatchStopped) else []:
                p = given.popleft()
                p.new_id = s.id
                yield p
            failed.append(exc)

    def _emit_sent(self, sent: Iterable[RetryPlan]) -> int:
        """Table mode: one line per task, "OLD_ID NEW_ID" (for scripts and people); else records."""
        if self.app.fmt == "table":
            import sys

            from celerytool.render.results import emit_lines

            return emit_lines((f"{p.old_id} {p.new_id}" for p in sent), sys.stdout)
        return self.app.emit(sent, "retry")

    def _forget(self, ids: list[str]) -> None:
        from celerytool.backends.criteria import Criteria
        from celerytool.brokers.base import Control
        from celerytool.cli.result_selection import open_store

        store = open_store(self.app, self.keyprefix, self.table_names)
        result = store.forget(Criteria.build(ids=ids), Control())
        note(f"forgot {result.done} old result(s)")


def _ids_in(stream: Iterable[str]) -> Iterator[str]:
    """Ids one a line, or NDJSON objects with an "id" (results -o ndjson, failures --ids -o ndjson)."""
    for line in stream:
        text = line.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                raise UsageError(f"not an id nor a JSON object: {text[:80]!r}") from None
            if isinstance(record, dict) and isinstance(record.get("ids"), list):
                yield from (str(i) for i in record["ids"])
            elif isinstance(record, dict) and isinstance(record.get("id"), str):
                yield record["id"]
            else:
                raise UsageError(f"a JSON line without an \"id\": {text[:80]!r}")
        else:
            yield text


def _exception(r: TaskResult) -> str | None:
    return str(r.exception.get("type")) if r.exception and r.exception.get("type") else None


def _raised(r: TaskResult, wanted: tuple[str, ...]) -> bool:
    name = _exception(r)
    if name is None:
        return False
    module = (r.exception or {}).get("module") or ""
    full = f"{module}.{name}" if module else name
    return any(fnmatch.fnmatchcase(name, w) or fnmatch.fnmatchcase(full, w) for w in wanted)


def _wanted(query: ResultQuery, r: TaskResult) -> bool:
    return query.matches(r)


def _none_sent(skipped: list[Skipped]) -> int:
    """Nothing to send: exit 1 when ids were selected and none could be retried, else 0."""
    if skipped:
        note(f"none of the {len(skipped)} selected result(s) could be retried")
        return 1
    note("no stored failures match")
    return 0


def _report_skipped(skipped: list[Skipped]) -> None:
    for s in skipped[:SHOW_SKIPPED]:
        warn(f"cannot retry {s.id}: {s.reason}")
    if len(skipped) > SHOW_SKIPPED:
        warn(f"... and {len(skipped) - SHOW_SKIPPED} more that cannot be retried")


def _packed(outcome: RetryPlan | Skipped) -> tuple[Any, ...]:
    """An outcome as plain values, for the pipe from the reading process; with the texts of its
    arguments worked out there (``build.arg_texts``: the sending process has less to do)."""
    if isinstance(outcome, Skipped):
        return (outcome.id, outcome.reason)
    if len(_SAME) > 10_000:
        _SAME.clear()
    same = _SAME.setdefault
    task, queue, status, exception = outcome.task, outcome.queue, outcome.status, outcome.exception
    return (outcome.old_id, same(task, task), outcome.args, outcome.kwargs, same(queue, queue),
            same(status, status), same(exception, exception), None, arg_texts(outcome.args, outcome.kwargs))


# In the reading process, one object for each text that repeats from task to task (its name,
# queue, state, exception): pickle writes it once a batch, then refers to it.
_SAME: dict[Any, Any] = {}


def _unpacking(received: Iterator[tuple[Any, ...]]) -> Iterator[RetryPlan | Skipped]:
    try:
        for item in received:
            yield Skipped(*item) if len(item) == 2 else RetryPlan(*item)
    finally:
        close = getattr(received, "close", None)
        if close is not None:
            close()
