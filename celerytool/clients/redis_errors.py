"""The one Redis error classifier: what a server or a socket said -> one CeleryToolError.

Both Redis clients (the light RESP client and redis-py) pass their failures
here, so a reply means the same exit code whichever client met it:

- ``WRONGTYPE``: a key of another type where a list/hash/set was expected (65);
- ``NOAUTH`` / ``WRONGPASS`` / bad AUTH: authentication failed (69);
- ``NOPERM``: the ACL refuses a command or key, said as Redis names it (69);
- ``READONLY`` (a replica), ``OOM`` (maxmemory reached with noeviction),
  ``MASTERDOWN``, ``BUSY``,
  ``MISCONF``: the server refuses this (69, not retried), with what to do;
- ``LOADING`` (the dataset is still loading): unavailable for now (69; ``send`` retries);
- any other error reply: the server refused the command (69);
- connection refused, reset, timed out, closed: unreachable (69).
"""

from __future__ import annotations

from celerytool.errors import BrokerRefused, BrokerUnavailable, CeleryToolError, DataError
from celerytool.urls import BrokerURL

# reply prefix -> what it means for the user
_REFUSED = {
    "READONLY": "is a read-only replica: point the URL at the master",
    "OOM": "is out of memory (maxmemory reached, eviction off): free memory or raise maxmemory",
    "MASTERDOWN": "is a replica that lost its master",
    "BUSY": "is busy running a script",
    "MISCONF": "refuses writes because it cannot save to disk (stop-writes-on-bgsave-error)",
    "NOREPLICAS": "has too few replicas to accept writes",
}
_AUTH = ("NOAUTH", "WRONGPASS", "ERR invalid password", "ERR AUTH", "ERR Client sent AUTH")


def reply_error(url: BrokerURL, what: str, text: str) -> CeleryToolError:
    """The error for an error reply ``text`` (``-ERR ...`` without the dash)."""
    where = f"{what} at {url.redacted()}"
    code = text.split(" ", 1)[0]
    if code == "WRONGTYPE":
        return DataError(url.scrub(f"{where}: a key has the wrong type for this operation ({text})"))
    if code == "NOPERM":  # logged in, but the ACL refuses this command or key: say which
        return BrokerRefused(url.scrub(f"the user of {where} is not allowed to do this (Redis ACL): "
                                       f"{text}"))
    if text.startswith(_AUTH):
        return BrokerRefused(url.scrub(f"authentication failed for {where}: {text}"))
    if code == "LOADING":  # transient: a publish retry may get through
        return BrokerUnavailable(url.scrub(f"{where} is still loading its dataset: try again in a moment"))
    if code in _REFUSED:
        return BrokerRefused(url.scrub(f"{where} {_REFUSED[code]} ({text})"))
    return BrokerRefused(url.scrub(f"{where} answered with an error: {text}"))


def connection_error(url: BrokerURL, what: str, exc: BaseException) -> CeleryToolError:
    """The error for a socket-level failure (refused, reset, timed out, closed)."""
    reason = str(exc) or type(exc).__name__
    return BrokerUnavailable(url.scrub(f"cannot reach {what} at {url.redacted()}: {reason}"))
