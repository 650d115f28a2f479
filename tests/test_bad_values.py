"""Bad values a fuzz campaign found to end in exit 70: a --max-size past any number, a duration
that reaches before the year 1 (or past Redis's PEXPIRE), a Redis URL whose query option kombu's
Connection cannot take.  Each is a one-line usage error (exit 2), and the largest values
accepted still work.
"""

from __future__ import annotations

import json

import pytest

UNREACHABLE = "redis://127.0.0.1:1/0"  # usage errors come before any connection


# --- --max-size: at most 1024G ----------------------------------------------------------

@pytest.mark.parametrize("size", ["1e999", "inf", "99999999999999999999G", "1025G", "nan"])
def test_max_size_past_the_maximum_is_a_usage_error(run, size):
    r = run("peek", "celery", "-b", UNREACHABLE, "--max-size", size)
    assert r.exit_code == 2, (size, r)
    assert "Invalid value for '--max-size'" in r.stderr and "internal error" not in r.stderr


def test_decode_with_a_huge_max_size_is_a_usage_error(run):
    r = run("decode", "--max-size", "99999999999999999999G", input='{"task": "t"}')
    assert r.exit_code == 2, r
    assert "at most 1024G" in r.stderr


def test_the_largest_max_size_still_reads(run, redis_url, celery_app):
    celery_app.send_task("tasks.big", args=[1], task_id="big-1")
    r = run("peek", "celery", "-b", redis_url, "--max-size", "1024G", "-o", "json")
    assert r.exit_code == 0, r
    assert [m["id"] for m in r.json()] == ["big-1"]


def test_decode_at_the_largest_max_size_reads_stdin(redis_client, celery_app):
    """A real process and a real pipe: stdin is read a MiB at a time, not with one read of
    2 x 1024G (a MemoryError, exit 70)."""
    import subprocess
    import sys

    celery_app.send_task("tasks.big", args=[7], task_id="big-2")
    raw = redis_client.lindex("celery", -1)
    done = subprocess.run([sys.executable, "-m", "celerytool", "decode", "--max-size", "1024G", "-o", "json"],
                          input=raw, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["args"] == [7]


# --- durations: at most 1000 years ------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("results", "--since", "9999999d"),
    ("failures", "--since", "9999999d"),
    ("retry", "--since", "9999999d", "--dry-run"),
    ("results", "--since", "99999999999999999999999d"),
    ("forget", "--older-than", "99999999999999999999999d", "--dry-run"),
    ("expire", "--ttl", "99999999999999999999999d", "--all", "-y"),
    ("expire", "--ttl", "9999999999d", "--all", "-y"),
    ("doctor", "--fix", "results-without-ttl", "--ttl", "99999999999999999999999d", "-y"),
    ("send", "tasks.x", "--countdown", "365001d"),
])
def test_durations_past_1000_years_are_usage_errors(run, redis_url, args):
    r = run(*args, "-b", redis_url)
    assert r.exit_code == 2, (args, r)
    option = next(a for a in reversed(args) if a in ("--since", "--older-than", "--ttl", "--countdown"))
    assert f"Invalid value for '{option}'" in r.stderr
    assert "out of range: from" in r.stderr and "365000d (1000 years)" in r.stderr


def test_the_longest_since_finds_every_result(run, redis_url, celery_app):
    celery_app.backend.store_result("ok-1", 5, "SUCCESS")
    celery_app.backend.store_result("bad-1", ValueError("no"), "FAILURE")
    r = run("results", "-b", redis_url, "--since", "365000d", "-o", "json")
    assert r.exit_code == 0, r
    assert sorted(x["id"] for x in r.json()) == ["bad-1", "ok-1"]
    r = run("failures", "-b", redis_url, "--since", "365000d", "-o", "json")
    assert r.exit_code in (0, 1), r  # 1: failures were found
    assert "bad-1" in r.stdout


def test_the_longest_ttl_is_set_on_redis(run, redis_url, redis_client, celery_app):
    celery_app.backend.store_result("ok-1", 5, "SUCCESS")
    r = run("expire", "-b", redis_url, "--ttl", "365000d", "--all", "-y")
    assert r.exit_code == 0, r
    pttl = redis_client.pttl("celery-task-meta-ok-1")
    assert 365000 * 86400 * 1000 - 60_000 < pttl <= 365000 * 86400 * 1000


# --- a Redis URL's query option values: exit 2 for every command -------------------------

BAD_QUERIES = [("db=abc", "db"), ("socket_timeout=abc", "socket_timeout"),
               ("ssl_cert_reqs=bogus", "ssl_cert_reqs"), ("heartbeat=x", "heartbeat"),
               ("socket_connect_timeout=inf", "socket_connect_timeout"),
               ("ssl_check_hostname=maybe", "ssl_check_hostname")]
COMMANDS = [("doctor",), ("workers",), ("inspect", "ping"), ("top", "--once"), ("queues",),
            ("peek", "celery"), ("results",), ("events", "-n", "1", "-t", "1")]


@pytest.mark.parametrize("query,option", BAD_QUERIES)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_query_option_value_is_a_usage_error_everywhere(run, redis_server, command, query, option):
    r = run(*command, "-b", f"{redis_server.url(0)}?{query}", "--connect-timeout", "1")
    assert r.exit_code == 2, (command, query, r)
    error = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(error) == 1 and f"error: query option {option}=" in error[0], r
    assert "internal error" not in r.stderr


def test_the_cert_reqs_spellings_name_the_ssl_levels():
    import ssl

    from celerytool.clients.tls import _CERT_REQS

    assert _CERT_REQS["cert_none"] == _CERT_REQS["verify_none"] == _CERT_REQS["false"] == ssl.CERT_NONE
    assert _CERT_REQS["optional"] == ssl.CERT_OPTIONAL
    assert _CERT_REQS["cert_required"] == _CERT_REQS["verify_peer"] == ssl.CERT_REQUIRED


@pytest.fixture(scope="module")
def worker_db5(redis_server, tmp_path_factory):
    from workers import worker_on_db

    with worker_on_db(redis_server, tmp_path_factory, 5) as w:
        yield w


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:{port}/5?socket_timeout=5",
    "redis://127.0.0.1:{port}?db=5",  # the database named by the query: kombu must get it too
    "redis://127.0.0.1:{port}/5?ssl_cert_reqs=verify_peer&socket_keepalive=true",
])
def test_the_live_commands_take_query_options_kombu_does_not(run, redis_server, worker_db5, url):
    r = run("workers", "-b", url.format(port=redis_server.port), "-o", "json", "-t", "10")
    assert r.exit_code == 0, (url, r)
    assert worker_db5.name in r.stdout


@pytest.mark.parametrize("query", ["connection_attempts=3&socket_timeout=5", "heartbeat=30", "heartbeat=abc"])
def test_the_live_commands_on_rabbitmq_take_query_options_kombu_does_not(run, amqp_url, query):
    """pika's query options (celerytool's own AMQP connections read them) are not kombu's: the
    control session leaves them out instead of ending in a TypeError (exit 70)."""
    url = f"{amqp_url}{'&' if '?' in amqp_url else '?'}{query}"
    for args in (["workers", "-t", "1"], ["inspect", "ping", "-t", "1"]):
        r = run(*args, "-b", url)
        assert r.exit_code == 1 and "no worker answered" in r.stderr, (args, r)  # asked: nobody runs here
