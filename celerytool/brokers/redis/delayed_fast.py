"""``delayed`` on Redis, the common case fast: a plain JSON unacked entry read from its bytes.

A kombu unacked entry holding a plain protocol-2 JSON task is ``[{"body": "<base64>",
"content-encoding": "utf-8", "content-type": "application/json", "headers": {"lang": "py",
"task": ..., "id": ..., "shadow": ..., "eta": ...`` ... ``}, "<exchange>", "<routing key>"]``
(kombu's ``json.dumps``, as ``delayed`` finds it).  One regex reads the head, the body
alone is decoded (``fast_envelope.task_body``: args and kwargs with their JSON texts);
anything else (compressed, pickled, escapes in the route, no ``+00:00`` offset that the
text can keep, ...) returns None and takes the full decoder, which gives the same record.
"""

from __future__ import annotations

import binascii
import re
from binascii import a2b_base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celerytool.codecs.fast_envelope import task_body
from celerytool.model import DelayedTask
from celerytool.timefmt import epoch, utc_iso

_FAST_HEAD = re.compile(
    rb'\[\{"body": "([A-Za-z0-9+/=]*)", "content-encoding": "utf-8", "content-type": "application/json", '
    rb'"headers": \{"lang": "py", "task": "([^"\\]*)", "id": "([^"\\]*)", "shadow": (?:null|"[^"\\]*"), '
    rb'"eta": (?:null|"([^"\\]*)")')
SKIP: Any = object()  # a plain entry without an eta (not a delayed task), or not bound for the queue asked
_FAILED = (ValueError, StopIteration, binascii.Error, IndexError, TypeError, KeyError, RecursionError)
_fromiso = datetime.fromisoformat

# (exchange, routing key) text at the end of an entry -> the queues kombu would restore it to
Routes = dict[bytes, list[str]]
Route = Callable[[str, str], list[str]]


def fast_delayed(raw: bytes, now: float, delivered: float, visibility_timeout: float, routes: Routes,
                 route: Route, queue: str | None = None) -> Any:
    """The ``DelayedTask`` of a plain entry, ``SKIP`` (no eta, or ``queue`` given and not among
    the queues it goes back to), or None (decode fully).

    A compressed body is not JSON once base64-decoded: it takes the full decoder too."""
    head = _FAST_HEAD.match(raw)
    if head is None:
        return None
    body, task, task_id, eta = head.groups()
    if eta is None:
        return SKIP
    cut = raw.rfind(b'}, "')
    if cut < 0 or not raw.endswith(b'"]'):
        return None
    tail = raw[cut + 3:]
    targets = routes.get(tail)
    if targets is None:
        parts = tail[1:-2].split(b'", "')
        if len(parts) != 2 or b"\\" in tail:
            return None
        try:
            exchange, routing_key = parts[0].decode(), parts[1].decode()
        except UnicodeDecodeError:
            return None
        targets = routes[tail] = route(exchange, routing_key)
    if queue is not None and queue not in targets:
        return SKIP
    try:
        text = eta.decode()
        if text.endswith("+00:00"):  # shown as it is (utc_iso's form)
            due = _fromiso(text).timestamp()
        else:
            when = epoch(text)
            if when is None:
                return None
            due, text = when, utc_iso(when)
        found = task_body(a2b_base64(body, strict_mode=True).decode())
        if found is None:
            return None
        args, kwargs, _embed, args_text, kwargs_text, _ = found
        if args.__class__ is not list or kwargs.__class__ is not dict:
            return None
        return DelayedTask(task_id.decode(), task.decode(), args, kwargs, targets[0] if targets else None, text,
                           due - now, "unacked", due - delivered > visibility_timeout, (args_text, kwargs_text))
    except _FAILED:  # UnicodeDecodeError is a ValueError
        return None
