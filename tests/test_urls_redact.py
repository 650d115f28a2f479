"""Passwords in URLs: no part of one in any output, for every URL shape celerytool takes.

Each shape here once showed part of its password (a fuzz campaign): an unencoded '/' in the
password echoed by "database must be a number", a query password with an '@' masked up to that
'@' only, unix:// socket URLs, and a redaction regex that took seconds on a long argument.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import pytest

from celerytool.urls import parse_url, redact_text

PW = "J7@q/Vx9Zk"  # every 3-character piece of these is checked, none is English
PASSWORDS = [PW, "J7@q?Vx9Zk", "J7@q#Vx9Zk", "J7q/Vx9@Zk", "J7&q;Vx9Zk", "J7 q@Vx9Zk"]
DOWN = "127.0.0.1:1"  # nothing listens there: connection refused at once


def pieces(password: str) -> list[str]:
    return [password[i:i + 3] for i in range(len(password) - 2)]


def assert_hidden(password: str, r) -> None:
    shown = r.stdout + r.stderr
    leaked = [p for p in pieces(password) if p in shown]
    assert not leaked, (leaked, shown)


SHAPES = [
    "redis://u:{pw}@" + DOWN + "/0",
    "redis://:{pw}@" + DOWN + "/0",
    "rediss://u:{pw}@" + DOWN + "/0",
    "redis://" + DOWN + "/0?password={pw}",
    "redis://" + DOWN + "/0?db=0&password={pw}&socket_timeout=1",
    "rediss://" + DOWN + "/0?ssl_keyfile_password={pw}",
    "sentinel://" + DOWN + "/0?master_name=m&sentinel_password={pw}",
    "sentinel://:{pw}@" + DOWN + "/0?master_name=m",
    "unix://:{pw}@/tmp/celerytool-no.sock?db=0",
    "unix://u:{pw}@/tmp/celerytool-no.sock?db=0",
    "unix:///tmp/celerytool-no.sock?password={pw}",
    "unix://{pw}@/tmp/celerytool-no.sock",
    "unix:///{pw}@/tmp/celerytool-no.sock",
    "redis+socket://:{pw}@/tmp/celerytool-no.sock",
    "amqp://u:{pw}@" + DOWN + "//",
    "amqps://u:{pw}@" + DOWN + "/vhost",
    "amqp://u:pw1@" + DOWN + "//?password={pw}",
    "u:{pw}@" + DOWN,
    "redis://a:{pw}@" + DOWN + "/0;redis://127.0.0.1:2/0",
]


@pytest.mark.parametrize("shape,password", [
    (shape, pw) for shape in SHAPES for pw in PASSWORDS
    # 'unix://NAME@/path' is a user name (as redis-py reads it) unless an '@' or '/' says otherwise
    if not shape.startswith("unix://{pw}") or "@" in pw or "/" in pw
])
def test_broker_urls_never_show_the_password(run, shape, password):
    url = shape.format(pw=password)
    for args in (("queues",), ("peek", "celery")):
        r = run(*args, "-b", url, "--connect-timeout", "1")
        assert r.exit_code in (2, 69), (url, args, r)
        assert_hidden(password, r)


BACKENDS = [
    "redis://u:{pw}@" + DOWN + "/0",
    "redis://" + DOWN + "/0?password={pw}",
    "unix://:{pw}@/tmp/celerytool-no.sock?db=0",
    "db+postgresql://u:{pw}@" + DOWN + "/db",
    "db+postgresql://u@" + DOWN + "/db?sslpassword={pw}",
    "db+postgresql://u@" + DOWN + "/db?sslpassword={pw}&connect_timeout=1",
    "django-db+postgresql://u:{pw}@" + DOWN + "/db",
]


@pytest.mark.parametrize("password", [PW, "J7@q#Vx9Zk"])
@pytest.mark.parametrize("shape", BACKENDS)
def test_backend_urls_never_show_the_password(run, shape, password):
    url = shape.format(pw=password)
    r = run("result", "x", "--backend", url, "--connect-timeout", "1")
    assert r.exit_code in (2, 69), (url, r)
    assert_hidden(password, r)


def test_an_at_sign_after_the_host_is_a_usage_error_that_says_where(run):
    r = run("queues", "-b", f"redis://u:{PW}@{DOWN}/0")
    assert r.exit_code == 2, r
    assert "an '@' after the host" in r.stderr and f"'redis://u:***@{DOWN}/0'" in r.stderr, r.stderr
    r = run("queues", "-b", "redis://127.0.0.1:1/x")  # no password: the bad part is still named
    assert r.exit_code == 2 and "not 'x'" in r.stderr, r


@pytest.mark.parametrize("password", PASSWORDS)
def test_management_urls_never_show_the_password(run, amqp_url, password):
    """--management-url's user info, percent-encoded or not (the API is down: its error shows the URL)."""
    for given in (password, quote(password, safe="")):
        r = run("queues", "-b", amqp_url, "--management-url", f"http://u:{given}@{DOWN}")
        assert r.exit_code in (0, 2), r  # 2: an '@' after the host; 0: counted by passive declare
        assert_hidden(password, r)


def test_query_passwords_are_masked_whole_and_other_options_stay():
    url = parse_url(f"redis://{DOWN}/0?db=0&password={PW}&ssl_keyfile_password=x&socket_timeout=1")
    assert url.redacted() == f"redis://{DOWN}/0?db=0&password=***&ssl_keyfile_password=***&socket_timeout=1"
    assert url.password == PW  # how it connects is unchanged
    assert parse_url(f"unix://:{PW.replace('@', '%40').replace('/', '%2F')}@/tmp/r.sock?db=0").password == PW


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory):
    from services import start_redis

    data = tmp_path_factory.mktemp("auth-redis")
    server = start_redis(data, extra=("--unixsocket", str(data / "r.sock"), "--requirepass", "Right-Pw-1"))
    yield server, data / "r.sock"
    server.stop()


@pytest.mark.parametrize("shape", [
    "unix://:{pw}@{sock}?db=0",
    "unix://u:{pw}@{sock}?db=0",
    "unix://{sock}?password={pw}".replace("//{sock}", "//{sock}"),
    "redis+socket://:{pw}@{sock}",
    "redis://127.0.0.1:{port}/0?password={pw}",
    "redis://:{pw}@127.0.0.1:{port}/0",
])
def test_a_reachable_server_refusing_the_password_does_not_show_it(run, auth_redis, shape):
    server, sock = auth_redis
    for password in ("J7@q?Vx9Zk", "J7-q+Vx9Zk"):
        url = shape.format(pw=password, sock=sock, port=server.port)
        for args in (("queues",), ("peek", "celery")):
            r = run(*args, "-b", url)
            assert r.exit_code in (2, 69), (url, r)
            assert_hidden(password, r)
        r = run("result", "x", "--backend", url)
        assert r.exit_code in (2, 69), (url, r)
        assert_hidden(password, r)


# --- redact_text: every URL in free text, in linear time ----------------------------------

@pytest.mark.parametrize("text,expected", [
    ("cannot reach redis://u:p@ss/w?rd#x@host:1/0: refused", "cannot reach redis://u:***@host:1/0: refused"),
    ("see 'amqp://:pw@h//'.", "see 'amqp://:***@h//'."),
    ("at (redis://h/0?password=p@ss/w&db=1), then", "at (redis://h/0?password=***&db=1), then"),
    ("x1redis://u:pw@h/0, y", "x1redis://u:***@h/0, y"),
    ("a redis://u:pw@h1/0;redis://v:pw2@h2/0 b", "a redis://u:***@h1/0;redis://v:***@h2/0 b"),
    ("a redis://u:pw@h1/0,amqp://v:pw2@h2// b", "a redis://u:***@h1/0,amqp://v:***@h2// b"),
    ("unix://:Su@3rS3cr3tPw@/tmp/redis.sock?db=0", "unix://:***@/tmp/redis.sock?db=0"),
    ("unix:///Su@3rS3cr3tPw@/tmp/redis.sock", "unix://***@/tmp/redis.sock"),
    ("rediss://h/0?ssl_keyfile_password=k@y/1;", "rediss://h/0?ssl_keyfile_password=***;"),
    ("redis://user@h/0 and redis://h/0", "redis://user@h/0 and redis://h/0"),
])
def test_redact_text_masks_every_url(text, expected):
    assert redact_text(text) == expected


def test_secrets_with_a_space_are_masked_where_the_url_ends_early():
    url = parse_url("redis://u:two%20words@h/0")
    assert url.scrub("refused: redis://u:two words@h/0") == "refused: redis://u:***@h/0"
    assert url.scrub("user two words") == "user ***"


_LONG = r"""
import sys
from celerytool.urls import redact_text
n = 1_000_000
for body in ("a" * n, "1a" * (n // 2), "a://" * (n // 4), "a://" + "." * n + "x", "x://h?password=" + "&a" * (n // 2),
             "redis://h/0?" + "passpass" * (n // 8), "x://" + "@" * n, "a:" * (n // 2)):
    out = redact_text("bad argument " + body + " near redis://u:pw@h/0.")
    assert out.endswith(" near redis://u:***@h/0."), out[-60:]
print("ok")
"""


def test_redact_text_is_linear_on_a_megabyte_argument():
    # ~12 s for 100 KB before (quadratic backtracking); now well under a second for 8 MB in all
    done = subprocess.run([sys.executable, "-c", _LONG], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]
