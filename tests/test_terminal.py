"""What people see in a terminal: empty selections explained, the JSON shape rule, bad settings refused."""

from __future__ import annotations

import json


def test_peek_selection_matching_nothing_says_how_many_were_examined(run, redis_url, celery_app):
    for i in range(5):
        celery_app.send_task("tasks.slow", (i,), queue="slow")
    r = run("peek", "slow", "--task", "nomatch", "-b", redis_url)
    assert r.exit_code == 0 and r.stdout == "", r
    assert "none of the 5 message(s) examined in 'slow' matched task nomatch" in r.stderr
    assert "empty" not in r.stderr
    r = run("peek", "slow", "--task", "tasks.slow", "-n", "2", "-b", redis_url, "-o", "json")
    assert len(r.json()) == 2


def test_unacked_older_than_with_only_younger_entries(run, redis_url, celery_app):
    for i in range(4):
        celery_app.send_task("tasks.young", (i,))
    with celery_app.connection_for_read() as conn:
        q = conn.SimpleQueue("celery", no_ack=False)
        held = [q.get(timeout=5) for _ in range(4)]  # delivered, not acked: kombu's unacked hash
        r = run("unacked", "--older-than", "1h", "-b", redis_url)
        assert r.exit_code == 0 and r.stdout == "", r
        assert "none older than 1h; 4 younger" in r.stderr
        r = run("unacked", "--older-than", "0s", "-b", redis_url, "-o", "json")
        assert len(r.json()) == 4
        for m in held:
            m.ack()
        q.close()


def test_result_json_is_an_array_even_for_one_id(run, redis_url, celery_app):
    celery_app.backend.store_result("one", 7, "SUCCESS")
    r = run("result", "one", "-o", "json", "-b", redis_url)
    assert r.exit_code == 0 and [x["result"] for x in r.json()] == [7], r
    assert [x["id"] for x in json.loads(run("result", "one", "one", "-o", "json", "-b", redis_url).stdout)] == \
        ["one", "one"]
    r = run("result", "one", "-o", "ndjson", "-b", redis_url)
    assert [x["id"] for x in r.ndjson()] == ["one"]
    r = run("result", "one", "-b", redis_url)  # a table for one id: the detail view
    assert r.stdout.splitlines()[0].split() == ["id", "one"]


def test_bad_output_in_the_environment_is_a_usage_error(run, redis_url):
    r = run("queues", "-b", redis_url, env={"CELERYTOOL_OUTPUT": "csv"})
    assert r.exit_code == 2 and "CELERYTOOL_OUTPUT='csv'" in r.stderr, r
    r = run("queues", "-b", redis_url, "-o", "json", env={"CELERYTOOL_OUTPUT": "csv"})
    assert r.exit_code == 0, r  # the option wins over the environment


def test_help_lists_own_options_then_points_at_the_connection_options(run):
    from celerytool.cli import COMMANDS, cli
    from celerytool.cli.options import CONNECTION_POINTER, CONNECTION_SECTION

    root = run("--help").stdout
    own, conn = root.index("\nOptions:"), root.index("\n" + CONNECTION_SECTION + ":")
    assert own < conn and "--broker" in root[conn:] and "--broker" not in root[own:conn]
    for name in COMMANDS:
        if cli.get_command(None, name) is None or name == "help":
            continue
        r = run(name, "--help")
        assert r.exit_code == 0, (name, r)
        text = r.stdout
        own = text.index("\nOptions:")
        assert "--help" in text[own:], name
        assert "--broker" not in text and CONNECTION_SECTION not in text, name
        assert " ".join(CONNECTION_POINTER.split()) in " ".join(text.split()), name
        if name == "peek":
            assert "--limit" in text[own:] and "--full-ids" in text[own:] and "--output" in text[own:]


def test_mistyped_command_gets_a_suggestion(run):
    r = run("queus")
    assert r.exit_code == 2 and "Did you mean" in r.stderr and "'queues'" in r.stderr, r
    r = run("nothinglikeit")
    assert r.exit_code == 2 and "Did you mean" not in r.stderr


def test_bindings_hide_celery_plumbing_unless_all(run, redis_url, celery_app):
    from test_queues import declare

    declare(celery_app, "w1@host.celery.pidbox", exchange="celery.pidbox", routing_key="", type_="fanout")
    declare(celery_app, "celeryev.4f1c2b9e", exchange="celeryev", routing_key="#", type_="topic")
    declare(celery_app, "work")
    queues = {b["queue"] for b in run("bindings", "-b", redis_url, "-o", "json").json()}
    assert queues == {"work"}
    queues = {b["queue"] for b in run("bindings", "--internal", "-b", redis_url, "-o", "json").json()}
    assert queues == {"work", "w1@host.celery.pidbox", "celeryev.4f1c2b9e"}
    named = run("bindings", "-q", "w1@host.celery.pidbox", "-b", redis_url, "-o", "json").json()
    assert [b["exchange"] for b in named] == ["celery.pidbox"]  # asked for by name: shown


def test_requeue_warns_about_live_workers_only_when_it_requeued_something(run, redis_url, celery_app):
    r = run("requeue", "-y", "-b", redis_url)
    assert r.exit_code == 0 and "requeued 0" in r.stderr, r
    assert "still alive" not in r.stderr
    celery_app.send_task("tasks.held", (1,))
    with celery_app.connection_for_read() as conn:
        q = conn.SimpleQueue("celery", no_ack=False)
        q.get(timeout=5)  # delivered, never acked
        r = run("requeue", "-y", "-b", redis_url)
        assert "requeued 1" in r.stderr and "still alive" in r.stderr, r
        q.close()
