"""Celery's native delayed delivery on RabbitMQ (Celery 5.5+): the 28 ``celery_delayed_<L>`` levels.

A countdown / ETA task goes to exchange ``celery_delayed_27`` with the routing
key ``<28 bits of the delay, most significant first, dot-separated>.<destination
routing key>``; level L (a queue with TTL 2**L s) holds it while bit L is set,
and each level dead-letters it to the next, down to ``celery_delayed_delivery``,
which routes it to the destination by its routing key (wire-format section 11).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from celerytool.brokers.base import DELAY_LEVELS
from celerytool.model import DelayedTask, Message
from celerytool.timefmt import epoch, utc_iso

LEVELS = DELAY_LEVELS
LEVEL_QUEUE = "celery_delayed_{}"


def split_routing_key(routing_key: str) -> tuple[int, str] | None:
    """``'0.0. ... .1.0.celery'`` -> (delay in seconds, destination routing key); None if not one."""
    parts = routing_key.split(".", LEVELS)
    if len(parts) <= LEVELS or any(p not in ("0", "1") for p in parts[:LEVELS]):
        return None
    return int("".join(parts[:LEVELS]), 2), parts[LEVELS]


def due_time(m: Message, level: int, bits: int | None) -> float | None:
    """When a message of level ``level`` is due: its ``eta`` header, else from the routing-key
    bits and the time RabbitMQ last dead-lettered it (into this level)."""
    due = epoch(m.eta)
    if due is not None or bits is None:
        return due
    deaths = (m.extra.get("x_death") or {}).get("history") or []
    entered = max((epoch(d.get("time")) or 0.0 for d in deaths), default=0.0)
    if not entered:
        return None  # the first level it entered: the publish time is not recorded
    left_here = sum(2 ** lv for lv in range(level + 1) if bits >> lv & 1)
    return entered + left_here


def delayed_in(levels: Iterator[tuple[int, Iterator[Message]]], queue: str | None) -> list[DelayedTask]:
    """The tasks of each level's messages (``(level, messages)``) bound for ``queue`` (None: any)."""
    now = time.time()
    out = []
    for level, messages in levels:
        for m in messages:
            rk = str((m.properties.get("delivery_info") or {}).get("routing_key") or "")
            parsed = split_routing_key(rk)
            bits, dest = parsed if parsed else (None, rk)
            if queue is not None and dest != queue:
                continue
            due = due_time(m, level, bits)
            out.append(DelayedTask(m.id, m.task, m.args, m.kwargs, dest, utc_iso(due) if due else None,
                                   None if due is None else due - now, LEVEL_QUEUE.format(level)))
    return out


def level_queues() -> list[tuple[int, str]]:
    return [(level, LEVEL_QUEUE.format(level)) for level in range(LEVELS - 1, -1, -1)]




DELIVERY_EXCHANGE = "celery_delayed_delivery"
ENTRY_EXCHANGE = LEVEL_QUEUE.format(LEVELS - 1)  # celery_delayed_27: where a delayed task is published


def delay_routing_key(seconds: int, routing_key: str) -> str:
    """kombu's ``calculate_routing_key``: the delay's 28 bits, most significant first, then the key."""
    from kombu.transport.native_delayed_delivery import calculate_routing_key

    return str(calculate_routing_key(seconds, routing_key))


def native_destination(bindings: list[dict[str, Any]], exchanges: list[dict[str, Any]], exchange: str,
                       routing_key: str, queue: str | None) -> tuple[str | None, str]:
    """Where Celery 5.5+'s ``send_task`` would send a countdown / ETA task through native delayed
    delivery: ``(routing key to put after the delay bits, "")``, or ``(None, why not)``.

    Celery does so when the destination's exchange is not direct (its app knows the queue's
    exchange; we read it from the bindings): the task goes to ``celery_delayed_27`` and comes
    back through ``celery_delayed_delivery``, which must be bound to that exchange (by the
    worker's ``bind_queue_to_native_delayed_delivery_exchange``)."""
    types = {str(e.get("name")): str(e.get("type")) for e in exchanges}
    if DELIVERY_EXCHANGE not in types or ENTRY_EXCHANGE not in types:
        return None, "no native delayed-delivery topology on this vhost"
    delivered_to = {str(b.get("destination")) for b in bindings
                    if b.get("source") == DELIVERY_EXCHANGE and b.get("destination_type") == "exchange"}
    if exchange:  # --exchange: Celery takes the given exchange and routing key
        candidates = [(exchange, routing_key)]
    else:  # a queue through the default exchange: the exchanges the queue is bound from
        candidates = [(str(b.get("source")), str(b.get("routing_key") or "")) for b in bindings
                      if b.get("destination") == queue and b.get("destination_type") == "queue"
                      and b.get("source") not in ("", DELIVERY_EXCHANGE)
                      and not str(b.get("routing_key") or "").startswith("#")]
    for name, key in candidates:
        if types.get(name) not in (None, "direct") and name in delivered_to:
            return key, ""
    if any(types.get(name) == "direct" for name, _ in candidates) or not candidates:
        return None, "direct exchange"
    return None, "its exchange is not bound to celery_delayed_delivery"
