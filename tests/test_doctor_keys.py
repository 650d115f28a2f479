"""Key classification of doctor, by name and type (the layouts of kombu and Celery, wire-format 3-4)."""

from __future__ import annotations

import pytest

from celerytool.housekeeping.keys import KeyLayout

PLAIN = KeyLayout()
PREFIXED = KeyLayout(prefix=b"myapp:", result_prefix=b"res_", sep=b":", steps=tuple(range(10)))


@pytest.mark.parametrize("layout,key,type_,expected", [
    (PLAIN, b"celery-task-meta-1f2e", "string", "task_result"),
    (PLAIN, b"celery-taskset-meta-9a", "string", "group_result"),
    (PLAIN, b"celery-taskset-meta-9a.j", "zset", "chord_counter"),
    (PLAIN, b"celery-taskset-meta-9a.t", "string", "chord_counter"),
    (PLAIN, b"celery-taskset-meta-9a.d", "set", "chord_counter"),
    (PLAIN, b"chord-unlock-9a", "string", "chord_counter"),
    (PLAIN, b"_kombu.binding.celery", "set", "binding"),
    (PLAIN, b"_kombu.binding_permanent.celery", "set", "binding"),
    (PLAIN, b"_kombu.binding_deadlines", "zset", "binding"),
    (PLAIN, b"unacked", "hash", "unacked"),
    (PLAIN, b"unacked_index", "zset", "unacked_index"),
    (PLAIN, b"unacked_mutex", "string", "unacked_mutex"),
    (PLAIN, b"celery", "list", "queue"),
    (PLAIN, b"celery\x06\x163", "list", "queue_priority"),
    (PLAIN, b"celery\x06\x164", "list", "queue"),  # 4 is not a priority step
    (PLAIN, b"8c1e.reply.celery.pidbox", "list", "reply_list"),
    (PLAIN, b"8c1e.reply.celery.pidbox\x06\x169", "list", "reply_list"),
    (PLAIN, b"w1@host.celery.pidbox", "list", "control_queue"),
    (PLAIN, b"celeryev.3f1a", "list", "event_queue"),
    (PLAIN, b"session:42", "string", "other"),
    (PLAIN, b"app:jobs", "hash", "other"),
    (PREFIXED, b"res_celery-task-meta-1", "string", "task_result"),
    (PREFIXED, b"celery-task-meta-1", "string", "other"),  # not this app's prefix
    (PREFIXED, b"myapp:unacked", "hash", "unacked"),
    (PREFIXED, b"myapp:celery:7", "list", "queue_priority"),
    (PREFIXED, b"myapp:_kombu.binding.celery", "set", "binding"),
    (PREFIXED, b"unacked", "hash", "other"),
])
def test_classify(layout, key, type_, expected):
    assert layout.classify(key, type_) == expected
