"""Steering commands (rate-limit, time-limit, pool ...): one call, one acknowledgement per worker.

Workers answer these remote-control commands with ``{"ok": text}`` or
``{"error": text}``.  The addressed workers are those given, or every one
that answers a ping; a call returns as soon as each of them answered, and a
worker that did not answer is never reported as done.
"""

from __future__ import annotations

from typing import Any

from celerytool.control.records import SteerAck
from celerytool.control.session import ControlSession

NO_REPLY = "no reply within the timeout"


def addressed(session: ControlSession, destination: list[str] | None, timeout: float) -> list[str]:
    """The workers to ask: ``destination`` as given, or every worker that answers a ping."""
    if destination:
        return list(dict.fromkeys(destination))
    names, _spent = session.ping(timeout)
    return names


def steer(session: ControlSession, command: str, arguments: dict[str, Any], workers: list[str],
          timeout: float) -> list[SteerAck]:
    """Send ``command`` to ``workers``; their answers, silent ones said as such (never ok)."""
    if not workers:
        return []
    replies = session.call(command, arguments, destination=workers, timeout=timeout, limit=len(workers))
    acks = []
    for worker in workers:
        if worker not in replies:
            acks.append(SteerAck(worker, False, NO_REPLY))
            continue
        reply = replies[worker]
        if isinstance(reply, dict) and "ok" in reply and "error" not in reply:
            acks.append(SteerAck(worker, True, str(reply["ok"])))
        elif isinstance(reply, dict) and "error" in reply:
            acks.append(SteerAck(worker, False, str(reply["error"])))
        else:
            acks.append(SteerAck(worker, False, f"unexpected reply: {str(reply)[:200]}"))
    return acks


def shutdown(session: ControlSession, workers: list[str], timeout: float) -> list[SteerAck]:
    """Warm shutdown of ``workers`` (which send no reply to it), confirmed by pinging them until
    none answers or ``timeout``: a worker that still answers is not reported as shut down."""
    import time

    deadline = time.monotonic() + timeout
    alive = sorted(session.call("ping", destination=workers, timeout=min(timeout, 1.0), limit=len(workers)))
    acks = [SteerAck(w, False, "did not answer a ping: not asked") for w in workers if w not in alive]
    if not alive:
        return acks
    session.cast("shutdown", destination=alive)
    left = list(alive)
    while left and time.monotonic() < deadline:
        per_call = min(0.5, max(deadline - time.monotonic(), 0.01))
        left = sorted(session.call("ping", destination=left, timeout=per_call, limit=len(left)))
        if left:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0)))
    acks += [SteerAck(w, w not in left, "shut down (no longer answers a ping)" if w not in left
                      else f"still answers a ping after {timeout:g} s (running tasks finish first)")
             for w in alive]
    return sorted(acks, key=lambda a: a.worker)


def consumers_of(session: ControlSession, queue: str, workers: list[str], timeout: float) -> list[str]:
    """Of ``workers``, those whose ``active_queues`` reply names ``queue`` (in the given order)."""
    if not workers:
        return []
    replies = session.call("active_queues", destination=workers, timeout=timeout, limit=len(workers))
    out = []
    for worker in workers:
        reply = replies.get(worker)
        if isinstance(reply, list) and any(isinstance(q, dict) and q.get("name") == queue for q in reply):
            out.append(worker)
    return out
