"""Remote-control replies read one by one, each bounded like a message body.

kombu's ``Mailbox._collect`` decodes every reply with kombu's own loaders
(no size or depth bound) and lets the first undecodable one end the
whole call, voiding every other worker's answer; it also waits ``timeout``
afresh after every reply.  ``install`` replaces it on one bound mailbox:
each reply is decoded with ``codecs.serializers.deserialize`` within
``Limits`` (json or msgpack: never pickle, nor YAML, whose aliases expand
inside the loader), a reply that cannot be read
or is not ``{worker: value}`` is set aside with the reason, and the call
ends at its deadline whatever arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import count
from typing import Any

from celerytool.codecs.limits import DEFAULT_LIMITS, Limits

# never pickle (replies are data, not code), nor YAML: a reply with an alias bomb expands to
# gigabytes inside the YAML loader before anything could bound it
ACCEPT = ["json", "msgpack"]
# what a transport raises when it cannot parse a message itself (Redis: a text that is not
# kombu's JSON envelope)
UNREADABLE = (RecursionError, ValueError, TypeError, KeyError, UnicodeError)
MAX_BAD_KEPT = 20  # reasons kept per session (a flood of bad replies is counted, not listed)


def decode_body(message: Any, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The body of one kombu message (a reply, an event) within ``limits``; DecodeError otherwise."""
    from celerytool.codecs.serializers import deserialize, serializer_name
    from celerytool.errors import DecodeError

    headers = message.headers if isinstance(message.headers, dict) else {}
    if headers.get("compression"):
        raise DecodeError("compressed messages are not read")
    body = message.body
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if not isinstance(body, (bytes, bytearray)):
        raise DecodeError(f"a body of type {type(body).__name__}")
    if len(body) > limits.max_bytes:
        raise DecodeError(f"{len(body)} bytes, more than {limits.max_bytes}")
    kind = serializer_name(message.content_type)
    if kind not in ACCEPT:
        raise DecodeError(f"{message.content_type} is refused (only {', '.join(ACCEPT)})")
    return deserialize(bytes(body), message.content_type, message.content_encoding, limits)


def decode_reply(message: Any, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The ``{worker: value}`` of one reply message; DecodeError with the reason otherwise."""
    from celerytool.errors import DecodeError

    value = decode_body(message, limits)
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise DecodeError(f"not {{worker: value}} but a {type(value).__name__}")
    return value


def install(mailbox: Any, bad: list[str], limits: Limits = DEFAULT_LIMITS) -> None:
    """Make ``mailbox`` (a bound kombu Mailbox) collect through ``collect``."""

    def _collect(ticket: str, limit: int | None = None, timeout: float = 1, callback: Callable | None = None,
                 channel: Any = None, accept: Any = None) -> list[dict[str, Any]]:
        return collect(mailbox, ticket, bad, limits, limit, timeout, callback, channel)

    mailbox._collect = _collect


def _note(bad: list[str], reason: str) -> None:
    if len(bad) < MAX_BAD_KEPT:
        bad.append(reason)
    elif len(bad) == MAX_BAD_KEPT:
        bad.append("more unreadable replies not listed")


def collect(mailbox: Any, ticket: str, bad: list[str], limits: Limits, limit: int | None,
            timeout: float, callback: Callable | None, channel: Any) -> list[dict[str, Any]]:
    """Replies to ``ticket`` until ``limit`` messages (good or bad) or ``timeout`` seconds."""
    from kombu import Consumer

    from celerytool.errors import CeleryToolError, DecodeError

    chan = channel or mailbox.connection.default_channel
    queue = mailbox.reply_queue
    responses: list[dict[str, Any]] = []

    def on_message(message: Any) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        clock = headers.get("clock")
        if isinstance(clock, int) and not isinstance(clock, bool):
            mailbox.clock.adjust(clock)
        if headers.get("ticket", ticket) != ticket:
            return  # a late reply to an earlier call of ours: its call is over
        try:
            body = decode_reply(message, limits)
        except (DecodeError, CeleryToolError) as exc:
            _note(bad, f"a worker reply could not be decoded and was skipped: {exc}")
            return
        if callback:
            callback(body)
        responses.append(body)

    def on_decode_error(message: Any, exc: Exception) -> None:
        _note(bad, f"a worker reply could not be decoded and was skipped: {exc}")

    consumer = Consumer(chan, [queue], no_ack=True, on_message=on_message, on_decode_error=on_decode_error)
    connection = mailbox.connection
    deadline = time.monotonic() + timeout
    try:
        with consumer:
            for _ in range(limit) if limit else count():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    connection.drain_events(timeout=remaining)
                except TimeoutError:
                    break
                except UNREADABLE as exc:
                    # the transport could not parse the message itself (Redis: its JSON envelope);
                    # kombu's Redis transport counts KeyError among its connection errors
                    _note(bad, f"a worker reply could not be decoded and was skipped: {type(exc).__name__}: "
                               f"{str(exc)[:200]}")
        return responses
    finally:
        chan.after_reply_message_received(queue.name)
