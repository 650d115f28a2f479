"""kombu's Redis layout and Celery's own queue names: the one place they are spelled.

Every module that builds or recognises these names (the Redis adapter's routing and publish,
the live commands' clean-up, doctor's key classes and fixes, the internal-queue filter) takes
them from here; tests/test_layout_owner.py fails when ``_kombu.binding`` or the separator is
spelled anywhere else in the code (wire-format sections 3 and 9).
"""

from __future__ import annotations

# kombu's Redis transport (kombu/transport/redis.py)
BINDING_PREFIX = "_kombu.binding."  # a set per exchange: routing_key<SEP>pattern<SEP>queue
BINDING_PERMANENT_PREFIX = "_kombu.binding_permanent."
BINDING_DEADLINES = "_kombu.binding_deadlines"  # a sorted set: exchange -> when its table may go
DEFAULT_SEP = "\x06\x16"  # between a queue's name and its priority step; between binding fields
DEFAULT_SEP_SHOWN = DEFAULT_SEP.encode("unicode_escape").decode("ascii")  # as typed: backslash escapes
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)

# Celery's remote control (control_exchange "celery") and events
CONTROL_NAMESPACE = "celery"
PIDBOX_EXCHANGE = f"{CONTROL_NAMESPACE}.pidbox"  # a worker's queue: <worker name>.celery.pidbox
PIDBOX_SUFFIX = f".{PIDBOX_EXCHANGE}"
REPLY_EXCHANGE = f"reply.{CONTROL_NAMESPACE}.pidbox"  # a reply queue: <oid>.reply.celery.pidbox
REPLY_SUFFIX = f".{REPLY_EXCHANGE}"
EVENT_EXCHANGE = "celeryev"  # an event receiver's queue: celeryev.<uuid>
EVENT_PREFIX = f"{EVENT_EXCHANGE}."


def binding_key(exchange: str, prefix: str = "") -> str:
    """The set holding ``exchange``'s bindings (with kombu's ``global_keyprefix``)."""
    return f"{prefix}{BINDING_PREFIX}{exchange}"


def priority_key(queue: str, step: int, sep: str = DEFAULT_SEP, prefix: str = "") -> str:
    """The list of ``queue``'s messages of one priority step (step 0: the queue's own name)."""
    return f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}"


def is_plumbing(name: str) -> bool:
    """Celery's remote-control, reply and event queues."""
    return name.endswith(".pidbox") or name.startswith(EVENT_PREFIX)
