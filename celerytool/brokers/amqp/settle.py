"""Waiting until RabbitMQ shows the messages a command gave back in their queue again.

A basic.nack with requeue is answered by nothing: the broker puts the messages
back after the command has moved on, and a passive declare right away counts
only part of them (measured on 3.10: 90,000 held by a selected purge, 11,700
ready when it ended, all of them 3.5 s later).  A command that gave messages
back polls the ready count until it shows them, so that whatever runs next
(``queues``, a health check) finds the queue whole.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink

SETTLE_SECONDS = 30.0  # repairs: at most this long
PEEK_SETTLE_SECONDS = 10.0  # reads
OTHERS_GRACE = 0.25  # the queue had other consumers before we began: wait this long at most


def wait_until_back(broker: AmqpLink, queue: str, target: int, seconds: float = SETTLE_SECONDS,
                    *, others: int = 0, quiet: bool = False) -> bool:
    """Passive declare until ``queue`` has ``target`` ready messages or more; False (and a warning
    unless ``quiet``) when it does not within ``seconds``.

    A consumer of the queue may take returned messages at once, so the count may
    never get there: when the queue shows consumers for longer than a grace period
    (OTHERS_GRACE if it had some before we began, ``others``; else the whole wait:
    our own cancelled consumer may be counted for a moment, quorum queues remove it
    asynchronously), the wait ends.
    """
    start = time.monotonic()
    deadline = start + seconds
    grace = OTHERS_GRACE if others else seconds
    pause = 0.002
    while True:
        ready, consumers = broker.counts(queue)
        if ready >= target:
            return True
        now = time.monotonic()
        if consumers and now - start >= grace:
            if not quiet:
                broker.warnings.append(
                    f"queue {queue!r} has {consumers} consumer(s): {ready} of the {target} message(s) it "
                    "should hold are ready now; the others are being requeued or were taken by a consumer")
            return False
        if now >= deadline:
            if not quiet:
                broker.warnings.append(
                    f"queue {queue!r}: RabbitMQ still shows {ready} of the {target} message(s) it should "
                    f"hold after {seconds:g} s; the others were returned (not removed) and are still being "
                    "requeued (or expired / were dead-lettered meanwhile): check with `celerytool queues` "
                    "before relying on the count")
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
