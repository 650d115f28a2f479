"""Map result states to the exit code of ``result`` (and ``send --wait``)."""

from __future__ import annotations

from collections.abc import Iterable

from celerytool.errors import ExitCode
from celerytool.model import TaskResult

READY_OK = frozenset({"SUCCESS"})
READY_BAD = frozenset({"FAILURE", "REVOKED"})
# The worst outcome among several ids decides: a failure outranks a stored value that cannot
# be decoded, which outranks a timeout, then "not ready yet", then success.
SEVERITY = {ExitCode.OK: 0, ExitCode.NOT_READY: 1, ExitCode.TIMEOUT: 2, ExitCode.DATA: 3,
            ExitCode.FAILURE: 4}


def exit_code_for(result: TaskResult, timed_out: bool = False) -> ExitCode:
    if result.error and result.status == "UNKNOWN":  # stored, but not readable: never a success
        return ExitCode.DATA
    if result.status in READY_OK:
        return ExitCode.OK
    if result.status in READY_BAD:
        return ExitCode.FAILURE
    return ExitCode.TIMEOUT if timed_out else ExitCode.NOT_READY


def worst_exit_code(results: Iterable[TaskResult], timed_out: bool = False) -> ExitCode:
    codes = [exit_code_for(r, timed_out) for r in results]
    return max(codes, key=SEVERITY.__getitem__) if codes else ExitCode.OK
