"""Hostile or malformed input that is not a message: --where, option values, URLs, stored names.

Each case once ended in exit 70, a password on the screen, or the terminal obeying
escape sequences stored in Redis (issue 9).
"""

from __future__ import annotations

import pytest

EVIL = "evil\x1b[2J\x1b]0;pwned\x07q"
EVIL_SHOWN = "evil\\x1b[2J\\x1b]0;pwned\\x07q"


# --- --where: exit 2 with a caret, never a RecursionError --------------------------------

@pytest.mark.parametrize("where,reason", [
    ("(" * 300 + "id" + ")" * 300, "nested more than 100 levels"),
    ("not " * 1000 + "id", "nested more than 100 levels"),
    (" and ".join(["id == 'x'"] * 1000), "more than 500 fields and values"),
    (" or ".join(["id"] * 1000), "more than 500 fields and values"),
    ("size == " + "9" * 5000, "number longer than 100 characters"),
    ("size > -" + "1" * 200 + ".5", "number longer than 100 characters"),
])
def test_where_too_big_is_a_usage_error_with_a_caret(run, where, reason):
    r = run("peek", "celery", "-b", "redis://127.0.0.1:1/0", "--where", where)
    assert r.exit_code == 2, r
    assert reason in r.stderr
    lines = r.stderr.rstrip("\n").splitlines()
    assert lines[-1].strip() == "^" and len(lines[-1]) < 100  # the caret under a short excerpt


def test_where_at_the_limits_still_works(run, redis_url, celery_app):
    celery_app.send_task("tasks.a", args=[1], task_id="a-1")
    celery_app.send_task("tasks.b", args=[2], task_id="b-2")
    nested = "(" * 99 + "args[0] == 2" + ")" * 99
    chain = " or ".join([f"id == 'n{i}'" for i in range(200)] + ["id == 'a-1'"])
    nots = "not " * 100 + "task == 'tasks.a'"  # an even number: true for tasks.a
    for where, expected in ((nested, ["b-2"]), (chain, ["a-1"]), (nots, ["a-1"])):
        r = run("peek", "celery", "-b", redis_url, "-o", "json", "--where", where)
        assert r.exit_code == 0, (where[:40], r)
        assert [m["id"] for m in r.json()] == expected


# --- option values: exit 2 (usage) or 69 (the broker says no) ----------------------------

@pytest.mark.parametrize("option", [
    ("--connect-timeout", "nan"), ("--connect-timeout", "inf"), ("--connect-timeout", "-1"),
    ("--sep", "\\x"), ("--sep", "\\u"), ("--sep", "\\"), ("--sep", "\\x0"),
])
def test_bad_option_values_exit_2(run, option):
    r = run("peek", "celery", "-b", "redis://127.0.0.1:1/0", *option)
    assert r.exit_code == 2, (option, r)
    assert option[0] in r.stderr


def test_escaped_separator_still_works(run, redis_url, celery_app):
    celery_app.send_task("tasks.p", args=[1], priority=9, task_id="p9")
    r = run("queues", "-b", redis_url, "--sep", "\\x06\\x16", "-o", "json")
    assert r.exit_code == 0 and r.json()[0]["messages"] == 1, r
    r = run("queues", "-b", redis_url, "--sep", ":", "-o", "json")  # another separator: not found
    assert r.exit_code == 0 and all(q["name"] != "celery" or q["messages"] == 0 for q in r.json()), r


@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..b", "x" * 254])
def test_bad_host_names_exit_2(run, host):
    for cmd in ("queues", "peek"):
        r = run(cmd, *(["celery"] if cmd == "peek" else []), "-b", f"redis://{host}:6379/0")
        assert r.exit_code == 2, (host, r)
        assert "63 characters" in r.stderr


def test_database_out_of_range_is_69_for_every_command(run, redis_server):
    url = redis_server.url(99999)
    for args in (("queues",), ("peek", "celery"), ("purge", "celery", "-y"), ("unacked",)):
        r = run(*args, "-b", url)
        assert r.exit_code == 69, (args, r)
        assert "DB index is out of range" in r.stderr


# --- passwords: never any part of one, one mask form -------------------------------------

@pytest.mark.parametrize("url", [
    "redis://u:s3cr3tPW#x@host/0",
    "redis://u:s3cr/3tPW@host/0",
    "redis://u:s3cr?3tPW@host/0",
    "redis://u:s3cr@3tPW@127.0.0.1:1/0",
    "redis://u:s3cr3tPW@host:99999/0",
    "amqp://u:s3cr#3tPW@[::1/vhost",
    "redis://u:s3cr3tPW@host/0;redis://v:s3cr#3tPW@h2/0",
])
def test_url_errors_never_show_password_text(run, url):
    r = run("queues", "-b", url, "--connect-timeout", "1")
    assert r.exit_code in (2, 69), (url, r)
    for part in ("s3cr", "3tPW", "cr3t", "cr@3", "cr/3", "cr?3", "cr#3"):
        assert part not in r.stderr, (url, r.stderr)
    assert ":***@" in r.stderr, r.stderr


def test_one_mask_form_even_when_user_and_password_are_equal(run):
    from services import free_port

    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    r = run("peek", "celery", "-b", url, "--connect-timeout", "1")
    assert r.exit_code == 69, r
    assert "guest:***@" in r.stderr and "***:***" not in r.stderr, r.stderr


def test_redact_text_masks_to_the_last_at_sign():
    from celerytool.urls import parse_url, redact_text

    text = "cannot reach redis://u:p@ss/w?rd#x@host:1/0: refused, see 'amqp://:pw@h//'."
    assert redact_text(text) == "cannot reach redis://u:***@host:1/0: refused, see 'amqp://:***@h//'."
    url = parse_url("amqp://guest:guest@h//")
    assert url.scrub(f"login guest refused on {url.raw}") == "login *** refused on amqp://guest:***@h//"


# --- terminal control characters in human output ------------------------------------------

def test_tables_escape_control_characters(run, redis_url, celery_app):
    celery_app.send_task("t\x1b[31mred", args=["\x1b[2J"], queue=EVIL, task_id="i\x07d")
    for args in (("queues",), ("bindings",), ("peek", EVIL)):
        r = run(*args, "-b", redis_url)
        assert r.exit_code == 0, (args, r)
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout, (args, r.stdout)
        if args[0] != "peek":
            assert EVIL_SHOWN in r.stdout, (args, r.stdout)
    assert "t\\x1b[31mred" in r.stdout and "i\\x07d" in r.stdout
    r = run("peek", EVIL, "-b", redis_url, "-o", "json")  # machine output keeps the exact text
    assert r.json()[0]["task"] == "t\x1b[31mred"


def test_error_lines_escape_control_characters(run, redis_url):
    r = run("peek", "nope\x1b[2J", "-b", redis_url)
    assert r.exit_code == 66
    assert "\x1b" not in r.stderr and "nope\\x1b[2J" in r.stderr


def test_result_escapes_control_characters(run, redis_url, celery_app):
    celery_app.backend.store_result("r-1", "x\x1b]0;pwned\x07y", "SUCCESS")
    celery_app.backend.store_result("r-2", ValueError("bad \x1b[2J\x1b]0;pwned\x07"), "FAILURE",
                                    traceback="Traceback\n  \x1b[2Jline\nValueError: bad")
    for args in (("result", "r-1"), ("result", "r-2"), ("results",)):
        r = run(*args, "-b", redis_url)
        assert r.exit_code in (0, 1), (args, r)
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout, (args, r.stdout)
        assert args[-1] == "r-1" or "bad \\x1b[2J" in r.stdout, r.stdout


def test_printable_escapes_every_control_character():
    from celerytool.render.escape import printable, printable_lines

    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x202E, 0x2066]:
        assert printable(f"a{chr(code)}b").isprintable()
    assert printable("ok plain") == "ok plain"
    assert printable("é ü 中") == "é ü 中"
    assert printable("a\nb\tc") == "a\\nb\\tc"
    assert printable_lines("a\nb\x1bc") == "a\nb\\x1bc"


def test_live_lines_and_top_escape_control_characters():
    import io

    from rich.console import Console

    from celerytool.control.top import Failure, QueueRow, TopSnapshot, WorkerRow
    from celerytool.render.live import event_line
    from celerytool.render.results import emit_lines
    from celerytool.render.top import screen

    line = event_line({"type": "task-failed", "timestamp": 0, "uuid": "u\x07", "name": EVIL,
                       "exception": "E\x1b]0;x\x07", "hostname": "w\x1b[2J"})
    assert "\x1b" not in line and "\x07" not in line and EVIL_SHOWN in line
    out = io.StringIO()
    emit_lines(["id\x1b[2J"], out)
    assert out.getvalue() == "id\\x1b[2J\n"
    snap = TopSnapshot("2026-01-01T00:00:00", "redis://h/0",
                       [QueueRow(EVIL, 1, None, [1]), QueueRow("[/bold]", 2, None, [2])],
                       [WorkerRow("w\x1b[2J", "online", 0, None, None, 0, ["[red]q"], 1)],
                       [Failure(None, "t\x1b[31m", "i\x07", "w", "E\x1b[2J")], True)
    text = io.StringIO()
    Console(file=text, width=200).print(screen(snap))
    shown = text.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown, shown
    assert EVIL_SHOWN in shown and "[/bold]" in shown and "[red]q" in shown  # not read as markup
