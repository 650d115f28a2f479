"""Exit codes and the exception types that carry them.

Every expected failure is raised as a ``CeleryToolError`` subclass; the CLI
turns it into one line on stderr and its exit code.  Codes follow BSD
sysexits where one fits, so shell scripts can tell the cases apart.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # task FAILURE/REVOKED, unroutable message, operation failed
    USAGE = 2  # bad option, bad URL, bad expression
    NOT_READY = 3  # result not ready / unknown id (without --wait)
    DATA = 65  # data of the wrong shape: wrong Redis key type, bad input file
    NOT_FOUND = 66  # queue / key does not exist
    UNAVAILABLE = 69  # broker or backend unreachable, refused, auth failed
    SOFTWARE = 70  # a bug in celerytool
    TIMEOUT = 124  # --wait hit --timeout
    INTERRUPTED = 130  # Ctrl-C
    CLOSED_PIPE = 141  # stdout's reader went away before the command had an outcome (128 + SIGPIPE)


class CeleryToolError(Exception):
    """An expected failure: printed as one line, mapped to an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(CeleryToolError):
    exit_code = ExitCode.USAGE


class BrokerUnavailable(CeleryToolError):
    """Broker or backend unreachable, refusing, or rejecting our credentials."""

    exit_code = ExitCode.UNAVAILABLE


class BrokerRefused(BrokerUnavailable):
    """The server answered but will not do this (read-only replica, out of memory, credentials):
    retrying the same request cannot help."""


class NotFound(CeleryToolError):
    exit_code = ExitCode.NOT_FOUND


class DataError(CeleryToolError):
    exit_code = ExitCode.DATA


class Unsupported(CeleryToolError):
    """The broker kind cannot do what was asked (e.g. ``unacked`` on RabbitMQ)."""

    exit_code = ExitCode.USAGE


class DecodeError(Exception):
    """A single message could not be decoded; shown in its ``error`` field."""
