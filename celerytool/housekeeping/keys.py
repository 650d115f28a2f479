"""Which Celery structure a Redis key belongs to, from its name (and its type for lists)."""

from __future__ import annotations

from dataclasses import dataclass

from celerytool import kombu_layout
from celerytool.backends.redis import GROUP_PREFIX, TASK_PREFIX
from celerytool.brokers.redis.unacked import UNACKED, UNACKED_INDEX, UNACKED_MUTEX

# the names are defined where they are read and written; here as bytes, for SCAN replies
TASK_META = TASK_PREFIX.encode()
GROUP_META = GROUP_PREFIX.encode()
CHORD_UNLOCK = b"chord-unlock-"
CHORD_SUFFIXES = (b".j", b".t", b".s", b".d", b".c")
BINDING = kombu_layout.BINDING_PREFIX.rstrip(".").encode()  # also _kombu.binding_permanent.* / _deadlines
REPLY_SUFFIX = kombu_layout.REPLY_SUFFIX.encode()
REPLY_EXCHANGE = kombu_layout.REPLY_EXCHANGE
PIDBOX_SUFFIX = b".pidbox"
EVENT_PREFIX = kombu_layout.EVENT_PREFIX.encode()
UNACKED_KEYS = {name.encode(): name for name in (UNACKED, UNACKED_INDEX, UNACKED_MUTEX)}

# class name -> what it is (the order is the order of the report)
CLASSES: dict[str, str] = {
    "queue": "queues",
    "queue_priority": "queue priority lists",
    "binding": "bindings",
    "unacked": "unacked",
    "unacked_index": "unacked_index",
    "unacked_mutex": "unacked_mutex",
    "task_result": "task results",
    "group_result": "group results",
    "chord_counter": "chord counters",
    "reply_list": "reply lists",
    "control_queue": "worker pidbox lists",
    "event_queue": "event queues",
    "other": "not Celery's",
}
RESULT_CLASSES = ("task_result", "group_result")


@dataclass(frozen=True)
class KeyLayout:
    """kombu's and Celery's naming options for one database."""

    prefix: bytes = b""  # kombu global_keyprefix (broker)
    result_prefix: bytes = b""  # Celery result backend global_keyprefix (with its separator)
    sep: bytes = kombu_layout.DEFAULT_SEP.encode("latin-1")
    steps: tuple[int, ...] = (0, 3, 6, 9)

    def split_priority(self, name: bytes) -> tuple[bytes, int]:
        """(queue name, bucket) of a list key name without the prefix."""
        base, sep, suffix = name.rpartition(self.sep)
        if sep and suffix.isdigit() and int(suffix) in self.steps and int(suffix) != 0:
            return base, int(suffix)
        return name, 0

    def by_name(self, key: bytes) -> str | None:
        """The class decided by the name alone, or None when the type is needed."""
        rp = self.result_prefix
        if key.startswith(rp + TASK_META):
            return "task_result"
        if key.startswith(rp + GROUP_META):
            return "chord_counter" if key.endswith(CHORD_SUFFIXES) else "group_result"
        if key.startswith(rp + CHORD_UNLOCK):
            return "chord_counter"
        p = self.prefix
        if p:
            if not key.startswith(p):
                return "other"
            key = key[len(p):]
        if key.startswith(BINDING):
            return "binding"
        return UNACKED_KEYS.get(key)

    def by_type(self, key: bytes, type_: str) -> tuple[str, bytes | None]:
        """(class, queue name) of a key whose name alone did not decide; queue name for lists."""
        if type_ != "list":
            return "other", None
        name, bucket = self.split_priority(key[len(self.prefix):])
        if name.endswith(REPLY_SUFFIX):
            return "reply_list", name
        if name.endswith(PIDBOX_SUFFIX):
            return "control_queue", name
        if name.startswith(EVENT_PREFIX):
            return "event_queue", name
        return ("queue" if bucket == 0 else "queue_priority"), name

    def classify(self, key: bytes, type_: str) -> str:
        return self.by_name(key) or self.by_type(key, type_)[0]
