"""Many real Celery messages fast: one envelope from send_task, cloned with new ids."""

from __future__ import annotations

import json
import uuid


def real_envelope(app, client, task: str, args=(1,), kwargs=None, queue: str = "celery", **opts) -> bytes:
    """Publish one message with Celery and take its stored envelope back off the list."""
    app.send_task(task, args, kwargs or {}, queue=queue, **opts)
    raw = None
    for key in (queue, *(f"{queue}\x06\x16{s}" for s in (3, 6, 9))):
        raw = raw or client.lpop(key)
    assert raw is not None
    return raw


def clones(template: bytes, n: int) -> list[tuple[str, bytes]]:
    """``n`` copies of a real envelope, each with its own task id and delivery tag."""
    env = json.loads(template)
    old_id = env["headers"]["id"].encode()
    old_tag = env["properties"]["delivery_tag"].encode()
    out = []
    for _ in range(n):
        tid = str(uuid.uuid4())
        out.append((tid, template.replace(old_id, tid.encode()).replace(old_tag, str(uuid.uuid4()).encode())))
    return out


def push(client, key: str, raws: list[bytes], chunk: int = 1000) -> None:
    """LPUSH in order (the first given is consumed first), many values per command."""
    pipe = client.pipeline(transaction=False)
    for i in range(0, len(raws), chunk):
        pipe.lpush(key, *raws[i:i + chunk])
    pipe.execute()


def ids_of(raws) -> list[str]:
    return [json.loads(r)["headers"]["id"] for r in raws]


def all_items(client, queue: str, steps=(0, 3, 6, 9)) -> list[bytes]:
    """Every stored message of a queue, all priority lists, consumption order."""
    out = []
    for s in steps:
        key = queue if s == 0 else f"{queue}\x06\x16{s}"
        out += list(reversed(client.lrange(key, 0, -1)))
    return out
