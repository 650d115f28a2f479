"""A RabbitMQ queue's delivery budget, and giving messages back without spending what it cannot afford.

What the brokers count (measured on the test brokers: tests/test_amqp_budget.py):

- RabbitMQ 3.10: a quorum queue counts every return of a message (basic.nack or
  basic.reject with requeue, and the unacked messages of a closed channel) in
  its ``x-delivery-count`` header (0 on the first delivery).  There is no limit
  unless the ``x-delivery-limit`` argument or a policy's ``delivery-limit`` sets
  one (the lower of the two applies); with limit L, the (L+1)th return drops the
  message (or dead-letters it).  A limit of 0 or below (-1 too) drops it at the
  first return.
- RabbitMQ 4.0.5: the same counting (no header on the first delivery), and a
  limit of 20 when none is set; -1 means no limit (the argument and a policy:
  the lower one, a negative one giving way to the other).
- RabbitMQ 4.3 (rabbitmq-server#15387; not measured here): basic.nack with
  requeue no longer counts, basic.reject still does.  celerytool returns
  messages with basic.nack only.
- Classic and stream queues count nothing.

The rule, where returns count: a message whose next return would reach its
limit (``x-delivery-count + 1 >= limit``) is not returned.  A copy (body,
properties and headers, minus the broker's ``x-delivery-count``) is published
to the same queue, RabbitMQ confirms it, and then the original is acked: the
message survives, at the tail of the queue, with a fresh count.  Keeping that one
attempt in hand means a crash (the broker then returns what we held, and counts
it) cannot drop a message either.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celerytool.brokers.amqp.confirm import Confirms
from celerytool.brokers.amqp.consume import Consumer
from celerytool.clients.management import ManagementError

if TYPE_CHECKING:
    from celerytool.brokers.amqp.link import AmqpLink

COUNT_HEADER = "x-delivery-count"
DEFAULT_LIMIT_4 = 20  # RabbitMQ 4.x quorum queues without a limit of their own
QUORUM_POLICY_TARGETS = ("all", "queues", "quorum_queues")


def delivery_count(props: Any) -> int:
    """Returns the broker counted for this delivery so far (0 when it says nothing)."""
    headers = props.headers
    if headers.__class__ is dict:
        count = headers.get(COUNT_HEADER)
        if isinstance(count, int) and not isinstance(count, bool):
            return int(count)
    return 0


@dataclass(frozen=True)
class Budget:
    """What returning a message of ``queue`` costs on this broker."""

    queue: str
    queue_type: str | None  # None: the management API could not say
    version: tuple[int, ...]  # () unknown
    limit: int | None  # the effective delivery limit; None: none
    counts: bool  # a basic.nack with requeue spends one delivery attempt here

    def at_risk(self, props: Any) -> bool:
        """True when returning this delivery would reach its limit (re-publish it instead)."""
        return self.limit is not None and delivery_count(props) + 1 >= self.limit

    @property
    def guarded(self) -> bool:
        """Returns here can reach a limit: deliveries must be checked."""
        return self.counts and self.limit is not None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) or "(unknown version)"

    def note(self) -> str | None:
        """What a read costs, for stderr; None where it costs nothing (or the type is unknown:
        read_budget has said so)."""
        if not self.counts or self.queue_type is None:
            return None
        head = (f"queue {self.queue!r} is a quorum queue: on RabbitMQ {self.version_text} reading it costs "
                "each message one delivery attempt")
        if self.limit is None:
            return head + " (x-delivery-count; the queue has no delivery limit)"
        return (head + f" (its limit is {self.limit}); a message one attempt short of its limit is "
                "published again at the tail of the queue instead of being returned")


def nack_counts(version: tuple[int, ...]) -> bool:
    """Does a basic.nack with requeue count towards a quorum queue's delivery limit?"""
    return not version or version < (4, 3)


def effective_limit(version: tuple[int, ...], values: list[int]) -> int | None:
    """The delivery limit from the argument and policies found (``values``), as the broker resolves it."""
    if not version or version >= (4,):
        if not values:
            return DEFAULT_LIMIT_4
        positive = [v for v in values if v >= 0]
        return min(positive) if positive else None  # every one negative: no limit
    if not values:
        return None
    return max(min(values), 0)  # 3.x: 0 or below drops at the first return


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _policy_limits(broker: AmqpLink, queue: str) -> list[int]:
    """delivery-limit of every policy and operator policy whose pattern matches ``queue``, now.

    The API's per-queue ``effective_policy_definition`` is a statistics sample (a
    policy made seconds ago may not show yet): the policies themselves are read as
    well.  Every matching one is counted, whatever its priority: the lowest limit
    is the safe one to follow.
    """
    out: list[int] = []
    for operator in (False, True):
        try:
            rows = broker.management.policies(broker.url.vhost, operator)
        except ManagementError:  # not allowed to list policies: the sample has to do
            continue
        for row in rows:
            if str(row.get("apply-to") or "all") not in QUORUM_POLICY_TARGETS:
                continue
            definition = row.get("definition")
            limit = _int(definition.get("delivery-limit")) if isinstance(definition, dict) else None
            if limit is None:
                continue
            try:
                matches = re.search(str(row.get("pattern") or ""), queue) is not None
            except re.error:
                matches = True  # a pattern Python cannot read: assume it applies
            if matches:
                out.append(limit)
    return out


def read_budget(broker: AmqpLink, queue: str) -> Budget:
    """The queue's type and effective delivery limit (management API) and the broker's version."""
    version = broker.server_version()
    try:
        row = broker.management.queue_policy(broker.url.vhost, queue)
    except ManagementError:
        row = None
    if not isinstance(row, dict):
        # without the API: assume the worst the version allows (a quorum queue, default limit)
        budget = Budget(queue, None, version, effective_limit(version, []), nack_counts(version))
        broker.warnings.append(
            f"queue {queue!r}: the management API at {broker.management} cannot say its type or "
            f"delivery limit; if it is a quorum queue, reading it costs each message one delivery "
            f"attempt, and celerytool assumes "
            f"{'no limit' if budget.limit is None else f'the default limit of {budget.limit}'} "
            f"(RabbitMQ {budget.version_text}): a lower x-delivery-limit or policy could drop messages "
            "read that often (give --management-url)")
        return budget
    qtype = str(row.get("type") or "classic")
    if qtype != "quorum":
        return Budget(queue, qtype, version, None, False)
    values: list[int] = []
    arguments = row.get("arguments")
    if isinstance(arguments, dict) and (v := _int(arguments.get("x-delivery-limit"))) is not None:
        values.append(v)
    definition = row.get("effective_policy_definition")
    if isinstance(definition, dict) and (v := _int(definition.get("delivery-limit"))) is not None:
        values.append(v)
    values += _policy_limits(broker, queue)
    return Budget(queue, qtype, version, effective_limit(version, values), nack_counts(version))


def without_count(props: Any) -> Any:
    """The properties of a copy: as delivered, minus the broker's own ``x-delivery-count``."""
    headers = props.headers
    if headers.__class__ is not dict or COUNT_HEADER not in headers:
        return props
    out = copy.copy(props)
    out.headers = {k: v for k, v in headers.items() if k != COUNT_HEADER}
    return out


def give_back(consumer: Consumer) -> int:
    """Return every unacked delivery of ``consumer`` (stopped); re-publish the ones at risk first.

    Copies of the deliveries at risk go to the same queue on a channel of their
    own in confirm mode; only once RabbitMQ confirmed every copy are the
    originals acked, then the rest are returned with one basic.nack(multiple,
    requeue).  Returns how many were re-published.
    """
    risky = [consumer.risky[tag] for tag in sorted(consumer.risky)]
    if risky:
        publisher = Consumer(consumer.broker, None, None, consumer.doing)
        try:
            confirms = Confirms(publisher)
            confirms.publish(str(consumer.queue), [(without_count(p), body) for _, p, body in risky])
            confirms.wait()
        finally:
            publisher.close()
        for method, _, _ in risky:
            consumer.ack(method.delivery_tag)
    if consumer.held() > 0:
        consumer.give_back()
    return len(risky)
