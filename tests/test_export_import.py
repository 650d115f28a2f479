"""export / import on real Redis with real Celery messages: byte-exact round trips."""

from __future__ import annotations

import json

from msgfactory import all_items, ids_of

KEYS = ("celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169")


def snapshot(client):
    return {k: client.lrange(k, 0, -1) for k in KEYS}


def send_mixture(app):
    ids = []
    for i, (ser, comp, prio) in enumerate([("json", None, 0), ("pickle", "zlib", 5), ("msgpack", "bzip2", 9),
                                           ("yaml", None, 7), ("json", "gzip", 0), ("pickle", None, 0)]):
        ids.append(app.send_task("tasks.mix", (i, "h\u00e9llo \u20ac"), {"n": i}, serializer=ser,
                                 compression=comp, priority=prio).id)
    return ids


def test_export_purge_import_round_trip_is_byte_identical(run, redis_url, redis_client, celery_app, tmp_path):
    ids = send_mixture(celery_app)
    redis_client.lpush("celery", b"\xff\xfe not json at all")  # kept byte-exact too
    before = snapshot(redis_client)
    out = tmp_path / "q.ndjson"
    r = run("export", "celery", "-b", redis_url, "--file", out)
    assert r.exit_code == 0, r
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 7
    assert sorted(x["id"] for x in lines if x["id"]) == sorted(ids)
    assert {x["task"] for x in lines if x["id"]} == {"tasks.mix"}
    assert any(x["error"] for x in lines)
    assert snapshot(redis_client) == before  # export alone changes nothing
    assert run("purge", "celery", "-b", redis_url, "-y").exit_code == 0
    assert all(v == [] for v in snapshot(redis_client).values())
    r = run("import", out, "celery", "-b", redis_url, "-y", "-o", "json")
    assert r.exit_code == 0, r
    assert r.json()["imported"] == 7
    assert snapshot(redis_client) == before


def test_export_selected_with_remove(run, redis_url, redis_client, celery_app, tmp_path):
    keep = [celery_app.send_task("tasks.keep", (i,)).id for i in range(5)]
    take = [celery_app.send_task("tasks.take", (i,)).id for i in range(4)]
    out = tmp_path / "take.ndjson"
    r = run("export", "celery", "--task", "tasks.take", "--remove", "-y", "-b", redis_url, "--file", out)
    assert r.exit_code == 0, r
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == take
    assert ids_of(all_items(redis_client, "celery")) == keep
    r = run("export", "celery", "--remove", "-y", "-b", redis_url)
    assert r.exit_code == 2 and "--file FILE" in r.stderr


def test_import_into_another_queue_points_routing_there(run, redis_url, redis_client, celery_app, tmp_path):
    celery_app.send_task("tasks.x", (1,))
    out = tmp_path / "x.ndjson"
    run("export", "celery", "-b", redis_url, "--file", out)
    assert run("import", out, "elsewhere", "-b", redis_url, "-y").exit_code == 0
    env = json.loads(redis_client.lindex("elsewhere", 0))
    assert env["properties"]["delivery_info"]["routing_key"] == "elsewhere"
    assert env["headers"]["id"] == json.loads(redis_client.lindex("celery", 0))["headers"]["id"]


def test_a_file_that_is_not_ndjson_names_the_line_and_imports_nothing(run, redis_url, redis_client,
                                                                      celery_app, tmp_path):
    celery_app.send_task("tasks.x", (1,))
    good = tmp_path / "good.ndjson"
    run("export", "celery", "-b", redis_url, "--file", good)
    line = good.read_text()
    bad = tmp_path / "bad.ndjson"
    bad.write_text(line + line + "this is not json\n" + line)
    r = run("import", bad, "other", "-b", redis_url)
    assert r.exit_code == 65 and "bad.ndjson:3" in r.stderr and "Traceback" not in r.stderr
    assert redis_client.llen("other") == 0
    wrong = tmp_path / "wrong.ndjson"
    wrong.write_text('{"a": 1}\n')
    r = run("import", wrong, "other", "-b", redis_url)
    assert r.exit_code == 65 and "wrong.ndjson:1" in r.stderr
    r = run("import", tmp_path / "missing.ndjson", "other", "-b", redis_url)
    assert r.exit_code == 66


def test_peek_with_a_selection(run, redis_url, celery_app):
    for i in range(6):
        celery_app.send_task("tasks.a" if i % 2 else "tasks.b", (i,), serializer="pickle", compression="zlib")
    r = run("peek", "celery", "-b", redis_url, "--where", "args[0] >= 2", "--task", "tasks.a", "-o", "json")
    assert r.exit_code == 0, r
    assert [m["args"] for m in r.json()] == [[3], [5]]
    r = run("peek", "celery", "-b", redis_url, "--task", "tasks.b", "-n", "1", "-o", "json")
    assert [m["args"] for m in r.json()] == [[0]]


def test_export_fast_lines_equal_the_general_form(redis_url, celery_app, redis_client):
    """The fast export line (stored JSON texts reused) holds the same values as to_json()."""
    import json

    from celerytool.brokers.base import ExportRecord
    from celerytool.codecs.message import decode_envelope

    celery_app.send_task("tasks.a", args=[1, "é", {"n": [2**70, 1.5e-7]}], kwargs={"k": None}, countdown=5)
    celery_app.send_task("tasks.b", args=[], kwargs={}, compression="zlib", expires=30)
    raws = redis_client.lrange("celery", 0, -1)
    assert len(raws) == 2
    for raw in raws:
        m = decode_envelope(raw, queue="celery", priority=0)
        assert m.json_texts is not None  # the fast path was taken
        rec = ExportRecord("redis", "celery", 0, raw, {}, message=m)
        general = ExportRecord("redis", "celery", 0, raw, {}, message=decode_envelope(raw, queue="celery", priority=0, fast=False))
        assert json.loads(rec.line()) == general.to_json()


def test_the_old_dash_o_file_spelling_is_gone_and_says_so(run, redis_url, redis_client, celery_app, tmp_path):
    celery_app.send_task("tasks.old")
    before = redis_client.lrange("celery", 0, -1)
    out = tmp_path / "old.ndjson"
    r = run("export", "celery", "-b", redis_url, "-o", out)
    assert r.exit_code == 2 and "--file FILE" in r.stderr and r.stdout == ""
    assert not out.exists() and redis_client.lrange("celery", 0, -1) == before
    assert "-o" not in run("export", "--help").stdout


def test_export_remove_selects_by_position_among_identical_copies(run, redis_url, redis_client, celery_app,
                                                                   tmp_path):
    from msgfactory import push, real_envelope

    g1 = real_envelope(celery_app, redis_client, "tasks.good", (1,))
    x = real_envelope(celery_app, redis_client, "tasks.x", (2,))
    push(redis_client, "celery", [g1, x, g1])
    out = tmp_path / "x.ndjson"
    r = run("export", "celery", "--task", "tasks.x", "--remove", "-y", "-b", redis_url, "--file", out)
    assert r.exit_code == 0, r
    assert [json.loads(line)["task"] for line in out.read_text().splitlines()] == ["tasks.x"]
    assert all_items(redis_client, "celery") == [g1, g1]


def test_import_asks_first_needs_yes_off_a_terminal_and_dry_run_publishes_nothing(run, redis_url, redis_client,
                                                                                   celery_app, tmp_path):
    celery_app.send_task("tasks.x", (1,))
    out = tmp_path / "x.ndjson"
    run("export", "celery", "-b", redis_url, "--file", out)
    r = run("import", out, "other", "-b", redis_url)
    assert r.exit_code == 2 and "--yes" in r.stderr, r
    r = run("import", out, "other", "-b", redis_url, "--dry-run", "-o", "json")
    assert r.exit_code == 0 and r.json()["dry_run"] is True, r
    assert redis_client.llen("other") == 0
    said: list[bytes] = []
    assert answer_on_a_terminal(["import", out, "other", "-b", redis_url], "n\n", said) == 2  # exit-codes.md
    assert b"cancelled: nothing was changed" in said[0], said
    assert redis_client.llen("other") == 0
    assert answer_on_a_terminal(["import", out, "other", "-b", redis_url], "y\n") == 0
    assert redis_client.llen("other") == 1


def answer_on_a_terminal(args, answer: str, said: list[bytes] | None = None) -> int:
    """Run the CLI with stdin and stderr on a pseudo-terminal and type ``answer`` at the prompt;
    what the terminal showed after the answer goes to ``said``."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    primary, secondary = os.openpty()
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", "celerytool", *map(str, args)], stdin=secondary,
                            stdout=subprocess.DEVNULL, stderr=secondary, env={**os.environ, "PYTHONPATH": str(root)})
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 30
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        seen += os.read(primary, 1024)
    assert b"Publish 1 message(s)" in seen, seen
    os.write(primary, answer.encode())
    code = proc.wait(timeout=30)
    after = b""
    try:
        while chunk := os.read(primary, 1024):
            after += chunk
    except OSError:  # EIO: the terminal's other side is closed, everything was read
        pass
    os.close(primary)
    if said is not None:
        said.append(after)
    return code


def test_export_remove_to_dev_null_and_to_an_unwritable_path(run, redis_url, redis_client, celery_app, tmp_path):
    """/dev/null cannot be fsynced: the user asked to discard, so the messages go (no exit 70);
    a path that cannot be opened is a usage error and nothing leaves the queue."""
    celery_app.send_task("tasks.gone")
    r = run("export", "celery", "--remove", "-y", "--file", "/dev/null", "-b", redis_url)
    assert r.exit_code == 0, r
    assert redis_client.llen("celery") == 0
    celery_app.send_task("tasks.kept")
    r = run("export", "celery", "--remove", "-y", "--file", tmp_path / "no" / "such" / "dir.ndjson", "-b", redis_url)
    assert r.exit_code == 2 and "cannot write" in r.stderr, r
    assert redis_client.llen("celery") == 1
