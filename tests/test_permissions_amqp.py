"""The RabbitMQ rows of docs/connection.md's permission table, on a user of our own: read-only
AMQP permissions with the management tag are enough to list, peek and purge selected messages
of a classic queue; without write permission nothing can be sent; without the management tag
`queues` falls back and `bindings` says why it cannot."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def user(rabbit_vhost):
    made = []

    def make(tags: str, configure: str = "^$", write: str = "^$", read: str = ".*") -> str:
        name = f"ct-{uuid.uuid4().hex[:8]}"
        rabbit_vhost.api("PUT", f"/users/{name}", {"password": "pw", "tags": tags})
        rabbit_vhost.api("PUT", f"/permissions/{rabbit_vhost.quoted}/{name}",
                         {"configure": configure, "write": write, "read": read})
        made.append(name)
        return rabbit_vhost.url(user=name, password="pw")

    yield make
    for name in made:
        try:
            rabbit_vhost.api("DELETE", f"/users/{name}")
        except Exception:
            pass


def test_read_only_permissions_with_the_management_tag(run, amqp_url, amqp_celery_app, user):
    for i in range(4):
        amqp_celery_app.send_task("tasks.keep" if i else "tasks.drop", args=(i,), queue="celery")
    url = user("management")
    r = run("queues", "-b", url, "-o", "json")
    assert r.exit_code == 0 and {q["name"]: q["messages"] for q in r.json()}.get("celery") == 4, r
    assert run("bindings", "-b", url, "-o", "json").exit_code == 0
    r = run("peek", "celery", "-b", url, "-o", "json")
    assert r.exit_code == 0 and len(r.json()) == 4, r
    r = run("purge", "celery", "--task", "tasks.drop", "-y", "-b", url, "-o", "json")
    assert r.exit_code == 0 and r.json()["removed"] == 1, r
    assert len(run("peek", "celery", "-b", amqp_url, "-o", "json").json()) == 3
    r = run("send", "tasks.add", "1", "-b", url, "--no-retry")  # no write permission
    assert r.exit_code != 0 and "Traceback" not in r.stderr, r
    assert len(run("peek", "celery", "-b", amqp_url, "-o", "json").json()) == 3


def test_without_the_management_tag(run, amqp_celery_app, user):
    amqp_celery_app.send_task("tasks.x", queue="celery")
    url = user("")
    r = run("queues", "celery", "-b", url, "-o", "json")
    assert r.exit_code == 0 and r.json()[0]["messages"] == 1 and r.stderr, r  # counted by a passive declare
    r = run("bindings", "-b", url)
    assert r.exit_code == 69 and "Traceback" not in r.stderr, r
