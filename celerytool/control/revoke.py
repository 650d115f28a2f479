"""``revoke``: tell every worker to skip (or kill) tasks by id, and who acknowledged."""

from __future__ import annotations

import re
import signal as signals
from collections.abc import Iterable
from typing import Any

from celerytool.control.records import RevokeAck
from celerytool.control.session import ControlSession
from celerytool.errors import UsageError

MEMORY_NOTE = ("revocations live in worker memory: lost when a worker restarts unless it runs with "
               "--statedb, and unknown to workers started later without mingle")


def signal_name(text: str) -> str:
    """``kill``, ``SIGKILL`` or ``9`` -> ``SIGKILL`` (what Celery's worker accepts)."""
    value = text.strip().upper()
    if value.isdigit():
        try:
            return signals.Signals(int(value)).name
        except ValueError:
            raise UsageError(f"unknown signal number {text!r}") from None
    name = value if value.startswith("SIG") else f"SIG{value}"
    if not isinstance(getattr(signals, name, None), signals.Signals):
        raise UsageError(f"unknown signal {text!r} (e.g. TERM, KILL, INT, USR1)")
    return name


def read_ids(lines: Iterable[str]) -> list[str]:
    """Task ids one a line; blank lines and # comments skipped; order kept, duplicates dropped."""
    out: dict[str, None] = {}
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            out[text] = None
    return list(out)


_SET_REPR = re.compile(r"\{((?:'[^']*'(?:, )?)+)\}")


def plain_reply(text: str) -> str:
    """Celery's "tasks {'a', 'b'} flagged as revoked" -> "tasks a, b flagged as revoked"."""
    return _SET_REPR.sub(lambda m: ", ".join(sorted(re.findall(r"'([^']*)'", m.group(1)))), text)


def revoke(session: ControlSession, ids: list[str], *, terminate: bool = False,
           signal: str | None = None, timeout: float = 1.0) -> list[RevokeAck]:
    """Broadcast ``revoke``; one acknowledgement per worker that answered, silent ones last."""
    arguments: dict[str, Any] = {"task_id": ids, "terminate": terminate}
    if signal:
        arguments["signal"] = signal
    replies = session.call("revoke", arguments, timeout=timeout)
    acks = []
    for worker in sorted(replies):
        reply = replies[worker]
        if isinstance(reply, dict) and "ok" in reply:
            acks.append(RevokeAck(worker, True, plain_reply(str(reply["ok"]))))
        else:
            error = reply.get("error") if isinstance(reply, dict) else reply
            acks.append(RevokeAck(worker, False, str(error)))
    silent = sorted(set(session.expected or []) - set(replies))
    acks += [RevokeAck(w, False, "no reply (bound but silent: probably dead)") for w in silent]
    return acks
