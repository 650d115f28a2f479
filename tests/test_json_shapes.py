"""The JSON shapes table of docs/output.md is what the commands print: each command run with
-o json on real Celery data, its shape (array or object) and the fields of its records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "output.md"


def doc_rows() -> dict[str, tuple[str, list[str]]]:
    text = DOC.read_text(encoding="utf-8").split("## JSON shapes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \| (array|object) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2), re.findall(r"`([^`]+)`", m.group(3)))
    return rows


def shape(stdout: str) -> tuple[str, list[str]]:
    data = json.loads(stdout)
    if isinstance(data, list):
        assert data, "an empty array tells nothing about its records"
        return "array", list(data[0])
    return "object", list(data)


@pytest.fixture
def filled(run, redis_url, celery_app, tmp_path):
    from test_queues import declare

    app = celery_app
    app.conf.result_extended = True
    declare(app, "celery")  # a binding row even when kombu remembers declaring it in an earlier test
    ids = [app.send_task("tasks.add", args=(i, i)).id for i in range(3)]
    from types import SimpleNamespace

    for i, tid in enumerate(ids):
        request = SimpleNamespace(id=tid, task="tasks.add", args=[i, i], kwargs={}, hostname="w1@h", retries=0,
                                  delivery_info={"routing_key": "celery"}, children=[], group=None,
                                  parent_id=None, ignore_result=False)
        app.backend.store_result(tid, ValueError("boom") if i == 0 else i, "FAILURE" if i == 0 else "SUCCESS",
                                 request=request)
    export = tmp_path / "x.ndjson"
    assert run("export", "celery", "-b", redis_url, "--file", export).exit_code == 0
    raw = json.loads(export.read_text().splitlines()[0])["raw"]
    body = tmp_path / "message.json"
    import base64

    body.write_bytes(base64.b64decode(raw["__value__"]) if raw.get("__type__") == "base64"
                     else raw["__value__"].encode())
    return {"ids": ids, "export": export, "message": body, "url": redis_url}


COMMANDS = {
    "queues": lambda f: ["queues"],
    "bindings": lambda f: ["bindings"],
    "peek": lambda f: ["peek", "celery"],
    "summary": lambda f: ["summary", "celery"],
    "decode": lambda f: ["decode", f["message"]],
    "send": lambda f: ["send", "tasks.add", "1", "2"],
    "send --dry-run": lambda f: ["send", "tasks.add", "1", "2", "--dry-run"],
    "result": lambda f: ["result", f["ids"][1]],
    "results": lambda f: ["results"],
    "failures": lambda f: ["failures"],
    "purge": lambda f: ["purge", "celery", "--task", "nothing.*", "-y"],
    "move": lambda f: ["move", "celery", "other", "--task", "nothing.*", "-y"],
    "import": lambda f: ["import", f["export"], "celery", "-y"],
    "forget": lambda f: ["forget", f["ids"][2], "-y"],
    "expire": lambda f: ["expire", "--ttl", "1d", "--all", "-y"],
    "doctor": lambda f: ["doctor"],
    "profiles": lambda f: ["profiles"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_json_shape_table_is_what_commands_print(run, filled, name):
    rows = doc_rows()
    r = run(*COMMANDS[name](filled), "-b", filled["url"], "-o", "json")
    assert r.exit_code in (0, 1), r
    got = shape(r.stdout)
    row = f"| `{name}` | {got[0]} | {' '.join(f'`{k}`' for k in got[1])} |"
    assert name in rows, f"docs/output.md has no row for {name}: {row}"
    assert rows[name][0] == got[0], row
    assert set(rows[name][1]) == set(got[1]), f"docs/output.md row for {name} should read: {row}"


# -- the live commands, with one real worker -------------------------------------------------

@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    from services import start_redis
    from workers import start_worker

    server = start_redis(tmp_path_factory.mktemp("shapes-redis"))
    w = None
    try:
        w = start_worker(server.url(0), tmp_path_factory.mktemp("shapes-worker"), queues="shapes", pool="solo",
                         events=True, prefix="shapes")
        yield server.url(0)
    finally:
        if w is not None:
            w.stop(wait=5)
        server.stop()


LIVE = {
    "workers": ["workers"],
    "inspect stats": ["inspect", "stats"],
    "inspect registered": ["inspect", "registered"],
    "top --once": ["top", "--once"],
    "revoke": ["revoke", "0b7d1a4e-0000-4000-8000-000000000000", "-y"],
}


@pytest.mark.parametrize("name", sorted(LIVE))
def test_the_live_commands_json_shapes(run, worker, name):
    rows = doc_rows()
    r = run(*LIVE[name], "-b", worker, "-o", "json")
    assert r.exit_code == 0, r
    got = shape(r.stdout)
    row = f"| `{name}` | {got[0]} | {' '.join(f'`{k}`' for k in got[1])} |"
    assert name in rows, f"docs/output.md has no row for {name}: {row}"
    assert rows[name][0] == got[0] and set(rows[name][1]) == set(got[1]), f"the row should read: {row}"
