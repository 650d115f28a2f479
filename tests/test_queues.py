"""queues and bindings against a real redis-server, with entities declared by real kombu."""

from __future__ import annotations


def declare(app, name, exchange=None, routing_key=None, type_="direct"):
    from kombu import Exchange, Queue

    with app.connection_for_write() as conn:
        Queue(name, Exchange(exchange or name, type_), routing_key or name)(conn.default_channel).declare()


def test_queues_counts_priority_lists_and_shows_empty_queues(run, redis_url, celery_app):
    for prio in (0, 0, 1, 5, 9, 7):
        celery_app.send_task("tasks.a", priority=prio)
    celery_app.send_task("tasks.b", queue="other")
    declare(celery_app, "idle")
    r = run("queues", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0, r
    by_name = {q["name"]: q for q in r.json()}
    # priority 1 -> bucket 0, 5 -> 3, 7 -> 6, 9 -> 9 (kombu's priority_steps 0,3,6,9)
    assert by_name["celery"]["messages"] == 6
    assert by_name["celery"]["priorities"] == {"0": 3, "3": 1, "6": 1, "9": 1}
    assert by_name["other"]["messages"] == 1
    assert by_name["idle"]["messages"] == 0 and by_name["idle"]["exists"] is True


def test_queues_named_on_the_command_line(run, redis_url, redis_client):
    r = run("queues", "nosuch", "-b", redis_url, "-o", "json")
    assert r.json() == [{"name": "nosuch", "messages": 0, "priorities": {"0": 0, "3": 0, "6": 0, "9": 0},
                         "exists": False, "delayed": 0}]  # nothing in flight: counted by default on Redis
    r = run("queues", "nosuch", "--no-delayed", "-b", redis_url, "-o", "json")
    assert "delayed" not in r.json()[0]


def test_queues_name_shows_only_that_queue(run, redis_url, celery_app):
    celery_app.send_task("tasks.a", queue="alpha")
    celery_app.send_task("tasks.b", queue="beta")
    celery_app.send_task("tasks.b", queue="beta")
    everything = {q["name"] for q in run("queues", "-b", redis_url, "-o", "json").json()}
    assert {"alpha", "beta"} <= everything
    r = run("queues", "beta", "-b", redis_url, "-o", "json")
    assert [(q["name"], q["messages"]) for q in r.json()] == [("beta", 2)]
    r = run("queues", "beta", "alpha", "beta", "-b", redis_url, "-o", "json")
    assert [(q["name"], q["messages"]) for q in r.json()] == [("beta", 2), ("alpha", 1)]


def test_queues_table(run, redis_url, celery_app):
    celery_app.send_task("tasks.a", priority=9)
    r = run("queues", "-b", redis_url)
    assert r.exit_code == 0
    assert "celery" in r.stdout and "9:1" in r.stdout


def test_internal_queues_hidden_unless_internal(run, redis_url, celery_app):
    # what a worker's remote-control mailbox declares
    declare(celery_app, "w1@host.celery.pidbox", exchange="celery.pidbox", routing_key="", type_="fanout")
    declare(celery_app, "work")
    names = {q["name"] for q in run("queues", "-b", redis_url, "-o", "json").json()}
    assert "work" in names and not any(n.endswith(".pidbox") for n in names)
    names_all = {q["name"] for q in run("queues", "--internal", "-b", redis_url, "-o", "json").json()}
    assert any(n.endswith(".pidbox") for n in names_all)
    old = run("queues", "--all", "-b", redis_url, "-o", "json")  # the old spelling, for one release
    assert {q["name"] for q in old.json()} == names_all and "--internal" in old.stderr
    old = run("queues", "-a", "-b", redis_url, "-o", "json")
    assert {q["name"] for q in old.json()} == names_all
    assert "--all" not in run("queues", "--help").stdout


def test_bindings_as_kombu_stores_them(run, redis_url, celery_app):
    declare(celery_app, "images", exchange="media", routing_key="media.images", type_="direct")
    declare(celery_app, "logs", exchange="topics", routing_key="log.#", type_="topic")
    r = run("bindings", "-b", redis_url, "-o", "json")
    rows = r.json()
    assert {"exchange": "media", "routing_key": "media.images", "pattern": "", "queue": "images"} in rows
    topic = [b for b in rows if b["queue"] == "logs"][0]
    assert topic["exchange"] == "topics" and topic["routing_key"] == "log.#"
    # kombu stores the topic regex it will match against
    from kombu.transport.virtual.exchange import TopicExchange

    assert topic["pattern"] == TopicExchange(None).key_to_pattern("log.#")
    only = run("bindings", "-q", "images", "-b", redis_url, "-o", "json").json()
    assert [b["queue"] for b in only] == ["images"]


def test_wrong_type_binding_key_is_skipped_with_a_warning(run, redis_url, redis_client, celery_app):
    declare(celery_app, "good")
    redis_client.set("_kombu.binding.broken", "not a set")
    r = run("bindings", "-b", redis_url, "-o", "json")
    assert r.exit_code == 0
    assert any(b["queue"] == "good" for b in r.json())
    assert "_kombu.binding.broken" in r.stderr
