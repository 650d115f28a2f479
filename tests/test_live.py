"""workers, inspect, revoke, events, top against two real ``celery worker`` processes on Redis.

Worker A consumes ``qa`` (prefork, concurrency 2, sends events with -E),
worker B consumes ``qb`` (threads, concurrency 3, no -E).  The module has a
redis-server of its own: other tests flush theirs, which would unbind the
workers.  Every command must leave the key set as it found it.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from timing import within

from services import wait_for
from workers import EventListener, start_worker, two_workers


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with two_workers(tmp_path_factory, "live",
                     dict(queues="qa", pool="prefork", concurrency=2, events=True, prefix="wa"),
                     dict(queues="qb", pool="threads", concurrency=3, prefix="wb", heartbeat=True)) as live:
        yield live


@pytest.fixture
def keys(live):
    """The key set of the live database now: call it again to compare."""
    import redis

    client = redis.Redis.from_url(live["url"])

    def snapshot():
        return {k.decode() for k in client.keys("*")}

    yield snapshot
    client.close()


WORKERS_WRITE = ("celery-task-meta-", "ct:record", "unacked", "q")  # results, records, prefetch, queues


def assert_clean(before, after):
    """No key added by the command (what the workers write meanwhile aside), no binding lost."""
    added = {k for k in after - before if not k.startswith(WORKERS_WRITE)}
    assert not added, f"left behind: {added}"
    lost = {k for k in before - after if k.startswith("_kombu")}
    assert not lost, f"removed: {lost}"


def test_workers_lists_both_with_queues_and_concurrency(run, live, keys):
    before = keys()
    r = run("workers", "-b", live["url"], "-o", "json")
    assert r.exit_code == 0, r
    rows = {w["name"]: w for w in r.json()}
    a, b = rows[live["a"].name], rows[live["b"].name]
    assert (a["status"], a["queues"], a["concurrency"], a["pool"]) == ("online", ["qa"], 2, "prefork")
    assert (b["status"], b["queues"], b["concurrency"], b["pool"]) == ("online", ["qb"], 3, "threads")
    assert a["pid"] == live["a"].proc.pid and b["pid"] == live["b"].proc.pid
    assert a["version"] and a["uptime"] is not None
    assert_clean(before, keys())
    # the table names both
    r = run("workers", "-b", live["url"])
    assert live["a"].name in r.stdout and live["b"].name in r.stdout


def test_workers_is_fast_when_everyone_answered(run, live):
    start = time.monotonic()
    r = run("workers", "-b", live["url"], "--timeout", "5", "-o", "json")
    assert r.exit_code == 0, r
    assert time.monotonic() - start < within(2.5), "waited for the timeout although both workers answered"


def test_wait_for_more_workers_than_exist_fails_after_timeout(run, live, keys):
    before = keys()
    start = time.monotonic()
    r = run("workers", "-b", live["url"], "--wait-for", "3", "--timeout", "3", "-o", "json")
    elapsed = time.monotonic() - start
    assert r.exit_code == 1, r
    assert 2.5 <= elapsed < within(5), elapsed
    assert "2 of 3" in r.stderr
    assert_clean(before, keys())


def test_wait_for_two_succeeds(run, live):
    r = run("workers", "-b", live["url"], "--wait-for", "2", "--timeout", "10", "-o", "json")
    assert r.exit_code == 0, r
    assert len([w for w in r.json() if w["status"] == "online"]) == 2


def test_no_worker_at_all_exits_1_without_hanging(run, live):
    empty = live["server"].url(7)
    start = time.monotonic()
    r = run("workers", "-b", empty, "--timeout", "1")
    assert r.exit_code == 1, r
    assert time.monotonic() - start < within(3)
    assert "no worker answered" in r.stderr


def test_unreachable_broker_is_exit_69(run):
    from services import free_port

    r = run("workers", "-b", f"redis://127.0.0.1:{free_port()}/0", "--connect-timeout", "1")
    assert r.exit_code == 69, r


def test_inspect_active_and_scheduled(run, live, keys):
    app = live["app"]
    long_id = f"long-{uuid.uuid4()}"
    eta_id = f"eta-{uuid.uuid4()}"
    app.send_task("worker_tasks.slow", args=[12.5], kwargs={}, queue="qa", task_id=long_id)
    app.send_task("worker_tasks.mark", args=["later"], queue="qb", task_id=eta_id, countdown=600)
    before = keys()

    def active():
        r = run("inspect", "active", "-b", live["url"], "-o", "json")
        return [t for t in r.json() if t["id"] == long_id]

    rows = wait_for(active, timeout=15)
    assert rows[0]["task"] == "worker_tasks.slow"
    assert rows[0]["args"] == [12.5] and rows[0]["kwargs"] == {}
    assert rows[0]["worker"] == live["a"].name and rows[0]["state"] == "active"
    assert rows[0]["time_started"]

    def scheduled():
        r = run("inspect", "scheduled", "-b", live["url"], "-o", "json")
        return [t for t in r.json() if t["id"] == eta_id]

    rows = wait_for(scheduled, timeout=15)
    assert rows[0]["worker"] == live["b"].name and rows[0]["args"] == ["later"]
    assert rows[0]["eta"] and rows[0]["eta"] > time.strftime("%Y-%m-%dT%H:%M", time.gmtime())

    # -d: only that worker answers; the table is readable
    r = run("inspect", "active-queues", "-b", live["url"], "-d", live["b"].name, "-o", "json")
    assert [(q["worker"], q["queue"]) for q in r.json()] == [(live["b"].name, "qb")]
    r = run("inspect", "registered", "-b", live["url"], "-o", "json")
    assert {"worker_tasks.slow", "worker_tasks.mark"} <= {row["task"] for row in r.json()}
    r = run("inspect", "stats", "-b", live["url"])
    assert r.exit_code == 0 and live["a"].name in r.stdout
    assert_clean(before, keys())
    live["long_id"] = long_id


def test_inspect_unknown_destination_exits_1(run, live):
    start = time.monotonic()
    r = run("inspect", "active", "-b", live["url"], "-d", "nobody@nowhere", "--timeout", "1")
    assert r.exit_code == 1, r
    assert "nobody@nowhere" in r.stderr and time.monotonic() - start < within(3)


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def records(live):
    import redis

    client = redis.Redis.from_url(live["url"])
    try:
        return [json.loads(x) for x in client.lrange("ct:record", 0, -1)]
    finally:
        client.close()


def test_revoke_queued_task_is_skipped_and_revoked(run, live, keys):
    app = live["app"]
    tag = f"revoked-{uuid.uuid4().hex[:6]}"
    task_id = app.send_task("worker_tasks.mark", args=[tag], queue="qb", countdown=2).id
    before = keys()
    r = run("revoke", task_id, "-b", live["url"], "--yes")
    assert r.exit_code == 0, r
    assert live["b"].name in r.stdout and live["a"].name in r.stdout
    assert f"tasks {task_id} flagged as revoked" in r.stdout  # not Celery's Python set repr
    assert "{" not in r.stdout
    assert "worker memory" in r.stderr
    assert_clean(before, keys())
    after = f"after-{uuid.uuid4().hex[:6]}"
    time.sleep(2.5)
    app.send_task("worker_tasks.mark", args=[after], queue="qb")
    wait_for(lambda: after in records(live), timeout=15)
    assert tag not in records(live)
    r = run("result", task_id, "-b", live["url"], "-o", "json")
    assert r.exit_code == 1 and r.json()[0]["status"] == "REVOKED", r
    assert task_id in live["b"].log_tail(20000)


def test_revoke_terminate_kills_the_running_task(run, live):
    app = live["app"]
    task_id = app.send_task("worker_tasks.slow", args=[30], queue="qa").id

    def running():
        r = run("inspect", "active", "-b", live["url"], "-o", "json")
        return any(t["id"] == task_id for t in r.json())

    wait_for(running, timeout=15)
    r = run("revoke", task_id, "--terminate", "--signal", "kill", "-b", live["url"], "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert live["a"].name in r.json()["acknowledged_by"] and r.json()["signal"] == "SIGKILL"
    wait_for(lambda: not running(), timeout=15)
    r = wait_for(lambda: (x := run("result", task_id, "-b", live["url"], "-o", "json")).exit_code == 1 and x,
                 timeout=10)
    assert r.json()[0]["status"] == "REVOKED"


def test_revoke_active_by_task_glob(run, live):
    app = live["app"]
    task_id = app.send_task("worker_tasks.slow", args=[30], queue="qa").id

    def running():
        return any(t["id"] == task_id for t in run("inspect", "active", "-b", live["url"], "-o", "json").json())

    wait_for(running, timeout=15)
    r = run("revoke", "--active", "--reserved", "--task", "worker_tasks.nomatch*", "-b", live["url"], "-y")
    assert r.exit_code == 0 and "nothing in the active tasks or the reserved tasks" in r.stderr, r
    r = run("revoke", "--active", "--task", "worker_tasks.sl*", "-b", live["url"], "--dry-run", "-o", "json")
    assert r.exit_code == 0 and task_id in r.json()["ids"], r  # (another test's slow task may run too)
    r = run("revoke", "--active", "--task", "worker_tasks.sl*", "--terminate", "--signal", "kill",
            "-b", live["url"], "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert task_id in r.json()["ids"] and live["a"].name in r.json()["acknowledged_by"]
    wait_for(lambda: not running(), timeout=15)
    r = run("revoke", "--task", "x", "-b", live["url"], "-y")
    assert r.exit_code == 2 and "--active" in r.stderr


def test_revoke_queue_selection_revokes_exactly_those(run, live):
    app = live["app"]
    run("purge", "qr", "-b", live["url"], "--yes")
    x_tags = [f"x-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    y_tags = [f"y-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    x_ids = [app.send_task("worker_tasks.mark", args=[t], queue="qr").id for t in x_tags]
    for t in y_tags:
        app.send_task("worker_tasks.stamp", kwargs={"tag": t}, queue="qr")
    r = run("revoke", "--queue", "qr", "--task", "worker_tasks.mark", "-b", live["url"], "--dry-run",
            "-o", "json")
    assert r.exit_code == 0 and sorted(r.json()["ids"]) == sorted(x_ids), r
    r = run("revoke", "--queue", "qr", "--task", "worker_tasks.mark", "-b", live["url"], "--yes", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted(r.json()["ids"]) == sorted(x_ids)
    r = run("peek", "qr", "-b", live["url"], "-o", "json")
    assert len(r.json()) == 5, "the messages stay queued"
    app.control.add_consumer("qr", destination=[live["b"].name], reply=True)
    try:
        wait_for(lambda: set(y_tags) <= {x.get("tag") for x in records(live) if isinstance(x, dict)},
                 timeout=20)
        wait_for(lambda: not run("peek", "qr", "-b", live["url"], "-o", "json").json(), timeout=10)
    finally:
        app.control.cancel_consumer("qr", destination=[live["b"].name], reply=True)
    assert not set(x_tags) & {x for x in records(live) if isinstance(x, str)}
    for task_id in x_ids:
        assert run("result", task_id, "-b", live["url"], "-o", "json").json()[0]["status"] == "REVOKED"


def test_revoke_needs_yes_off_a_terminal_and_checks_signal(run, live):
    r = run("revoke", "some-id", "-b", live["url"])
    assert r.exit_code == 2 and "--yes" in r.stderr
    r = run("revoke", "some-id", "--signal", "KILL", "-b", live["url"], "-y")
    assert r.exit_code == 2 and "--terminate" in r.stderr
    r = run("revoke", "some-id", "--terminate", "--signal", "NOPE", "-b", live["url"], "-y")
    assert r.exit_code == 2
    r = run("revoke", "a", "b", "--dry-run", "-b", live["url"], "-o", "json")
    assert r.json() == {"ids": ["a", "b"], "terminate": False, "dry_run": True}
    r = run("revoke", "--from", "-", "--dry-run", "-b", live["url"], "-o", "json", input="x\n\n# c\ny\nx\n")
    assert r.json()["ids"] == ["x", "y"]
    # an empty pipe (no STARTED result, say) revokes nothing, and says so rather than "give task ids"
    r = run("revoke", "--from", "-", "-y", "-b", live["url"], input="")
    assert r.exit_code == 0 and r.stdout == "" and "no task id in stdin: nothing to revoke" in r.stderr, r


# -- events (a real subprocess: it blocks until -n, --timeout or Ctrl-C) -----------------

def cli_process(*args):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_OUTPUT")}
    return subprocess.Popen([sys.executable, "-m", "celerytool", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def listener(live):
    """Made before an events process starts; ``.ready()`` once it is subscribed."""
    import redis

    return EventListener(redis.Redis.from_url(live["url"]))


def test_events_sees_three_tasks_succeed(live, keys):
    app = live["app"]
    before = keys()
    probe = listener(live)
    proc = cli_process("events", "-b", live["url"], "-n", "3", "--type", "task-succeeded",
                       "--task", "worker_tasks.add", "--timeout", "30")
    try:
        wait_for(probe.ready, timeout=15)
        ids = [app.send_task("worker_tasks.add", args=[i, i], queue="qa").id for i in range(3)]
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    events = _json_lines(out)
    assert sorted(e["uuid"] for e in events) == sorted(ids)
    assert {e["type"] for e in events} == {"task-succeeded"}
    assert {e["hostname"] for e in events} == {live["a"].name}
    assert sorted(json.loads(e["result"]) for e in events) == [0, 2, 4]
    assert_clean(before, keys())


def test_events_enable_turns_on_a_worker_started_without_E(live, keys):
    app = live["app"]
    before = keys()
    probe = listener(live)
    proc = cli_process("events", "-b", live["url"], "--enable", "-n", "2", "--type", "task-succeeded",
                       "--worker", live["b"].name, "--timeout", "30")
    try:
        wait_for(probe.ready, timeout=15)
        time.sleep(1.0)  # enable_events goes out once the receiver is ready
        ids = [app.send_task("worker_tasks.mul", args=[i, 3], queue="qb").id for i in range(2)]
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "enable_events" in err and "2 agreed" in err
    events = _json_lines(out)
    assert sorted(e["uuid"] for e in events) == sorted(ids)
    assert {e["hostname"] for e in events} == {live["b"].name}
    assert_clean(before, keys())


def test_events_timeout_is_124(run, live, keys):
    before = keys()
    start = time.monotonic()
    r = run("events", "-b", live["url"], "--type", "task-rejected", "--timeout", "1", "-o", "ndjson")
    assert r.exit_code == 124, r
    assert time.monotonic() - start < within(4)
    assert_clean(before, keys())


@pytest.mark.parametrize("args, code, sig", [
    (("events",), 0, "SIGINT"),
    (("events",), 0, "SIGTERM"),
    (("inspect", "active", "-d", "nobody@nowhere", "--timeout", "20"), 130, "SIGINT"),
    (("workers", "--wait-for", "5", "--timeout", "20"), 130, "SIGINT"),
    (("workers", "--wait-for", "5", "--timeout", "20"), 130, "SIGTERM"),
])
def test_ctrl_c_leaves_nothing_behind(live, keys, args, code, sig):
    """Ctrl-C, or SIGTERM (e.g. from `timeout`), also removes the reply / event queue."""
    import signal

    before = keys()
    probe = listener(live)
    proc = cli_process(*args, "-b", live["url"])
    try:
        if args[0] == "events":
            wait_for(probe.ready, timeout=15)
        else:
            wait_for(lambda: any("reply.celery.pidbox" in k for k in keys()), timeout=15, every=0.02)
        time.sleep(0.3)
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert_clean(before, keys())


# -- top ---------------------------------------------------------------------------------

def test_top_once_agrees_with_queues_and_workers(run, live, keys):
    app = live["app"]
    run("purge", "qt", "-b", live["url"], "--yes")
    for i in range(7):
        app.send_task("worker_tasks.add", args=[i, i], queue="qt")
    before = keys()
    top = run("top", "--once", "-b", live["url"], "-o", "json")
    assert top.exit_code == 0, top
    snap = top.json()
    queues = run("queues", "-b", live["url"], "-o", "json").json()
    workers = run("workers", "-b", live["url"], "-o", "json").json()
    assert {q["name"]: q["messages"] for q in snap["queues"]} == {q["name"]: q["messages"] for q in queues}
    assert {q["name"]: q["messages"] for q in snap["queues"]}["qt"] == 7

    def who(rows):
        return sorted((w["name"], w["status"], tuple(w["queues"]), w["concurrency"]) for w in rows)

    assert who(snap["workers"]) == who(workers)
    assert {w["name"] for w in snap["workers"]} == {live["a"].name, live["b"].name}
    assert_clean(before, keys())
    r = run("top", "--once", "-b", live["url"])
    assert "queues" in r.stdout and live["a"].name in r.stdout


def test_top_needs_a_terminal(run, live):
    r = run("top", "-b", live["url"])
    assert r.exit_code == 2 and "--once" in r.stderr


def test_top_in_tmux_quits_on_q_and_restores_the_terminal(live, keys, tmp_path):
    import shlex
    import shutil
    import subprocess
    import sys

    from services import apt_install

    if not shutil.which("tmux"):
        apt_install("tmux")
    sock = f"ct-top-{uuid.uuid4().hex[:8]}"

    def tmux(*args):
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=True).stdout

    before = keys()
    tmux("new-session", "-d", "-x", "160", "-y", "45", "bash --norc --noprofile")
    try:
        cmd = f"{shlex.quote(sys.executable)} -m celerytool top -b {live['url']}; echo EXIT\"\"ED=$?"
        tmux("send-keys", "-t", "0", cmd, "Enter")
        wait_for(lambda: live["a"].name in tmux("capture-pane", "-t", "0", "-p")
                 and "q or Ctrl-C quits" in tmux("capture-pane", "-t", "0", "-p"), timeout=20)
        screen = tmux("capture-pane", "-t", "0", "-p")
        assert "queues" in screen and "workers" in screen and live["b"].name in screen
        # worker A sends events: its failure shows up with the exception line
        live["app"].send_task("worker_tasks.fail", args=["shown by top"], queue="qa")
        wait_for(lambda: "shown by top" in tmux("capture-pane", "-t", "0", "-p"), timeout=15)
        tmux("send-keys", "-t", "0", "q")
        def exited():
            pane = tmux("capture-pane", "-t", "0", "-p")
            return pane if "EXITED=" in pane else None

        pane = wait_for(exited, timeout=15)
        assert "EXITED=0" in pane
        assert "Traceback" not in pane and "q or Ctrl-C quits" not in pane  # the normal screen is back
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    assert_clean(before, keys())


def test_top_once_fits_columns_without_trailing_spaces(run, live):
    """COLUMNS=70 through a pipe: no line wider, none ending in spaces, and no "-E" advice
    (worker A runs with -E; --once does not listen for events at all)."""
    r = run("top", "--once", "-b", live["url"], env={"COLUMNS": "70"})
    assert r.exit_code == 0, r
    lines = r.stdout.splitlines()
    assert live["a"].name in r.stdout and "latest failures" in r.stdout
    assert all(len(text) <= 70 for text in lines), [t for t in lines if len(t) > 70]
    assert all(text == text.rstrip() for text in lines)
    assert "-E" not in r.stdout


def test_top_at_70_columns_keeps_task_names_and_lines_whole(live, tmp_path):
    """A 70-column terminal: the title and a failure row stay on one line each, the task name is
    whole while the id gives way, and no "start workers with -E" beside a worker running -E."""
    import shlex
    import shutil
    import subprocess
    import sys

    from services import apt_install

    if not shutil.which("tmux"):
        apt_install("tmux")
    sock = f"ct-top70-{uuid.uuid4().hex[:8]}"

    def tmux(*args):
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=True).stdout

    tmux("new-session", "-d", "-x", "70", "-y", "45", "bash --norc --noprofile")
    try:
        cmd = f"{shlex.quote(sys.executable)} -m celerytool top -b {live['url']}"
        tmux("send-keys", "-t", "0", cmd, "Enter")
        wait_for(lambda: "latest failures" in tmux("capture-pane", "-t", "0", "-p"), timeout=20)
        first = tmux("capture-pane", "-t", "0", "-p")
        assert "-E" not in first, first
        task_id = live["app"].send_task("worker_tasks.fail", args=["at seventy"], queue="qa").id
        pane = wait_for(lambda: (lambda p: p if task_id[:6] in p else None)(
            tmux("capture-pane", "-t", "0", "-p")), timeout=15)
        row = next(text for text in pane.splitlines() if task_id[:6] in text)
        assert "worker_tasks.fail" in row and "CustomError" in row, pane
        assert task_id not in pane  # the full id gave way, not the name
        title = next(text for text in pane.splitlines() if "latest failures" in text)
        assert title.strip() == "latest failures", pane  # one line, no -E advice
        tmux("send-keys", "-t", "0", "q")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def test_a_killed_worker_is_named_silent(run, live, tmp_path):
    """kill -9 leaves the worker's pidbox binding: it is expected, does not answer, is named."""
    import redis

    ghost = start_worker(live["url"], tmp_path / "ghost", queues="qg", prefix="ghost")
    ghost.proc.kill()
    ghost.proc.wait(10)
    client = redis.Redis.from_url(live["url"])
    rows = []
    try:
        rows = [r for r in client.smembers("_kombu.binding.celery.pidbox") if ghost.name.encode() in r]
        assert rows, "kombu keeps the binding of a killed worker"
        start = time.monotonic()
        r = run("workers", "-b", live["url"], "--timeout", "1", "-o", "json")
        elapsed = time.monotonic() - start
        assert r.exit_code == 0, r
        status = {w["name"]: w["status"] for w in r.json()}
        assert status == {live["a"].name: "online", live["b"].name: "online", ghost.name: "silent"}
        assert ghost.name in r.stderr and "probably dead" in r.stderr
        assert 0.9 <= elapsed < within(3.5), elapsed  # waited for the ghost, up to the timeout only
        r = run("revoke", "nothing-" + uuid.uuid4().hex, "-b", live["url"], "-y", "-o", "json")
        assert sorted(r.json()["acknowledged_by"]) == sorted([live["a"].name, live["b"].name])
        assert [x["worker"] for x in r.json()["replies"] if not x["ok"]] == [ghost.name]
    finally:
        if rows:
            client.srem("_kombu.binding.celery.pidbox", *rows)
        client.close()
