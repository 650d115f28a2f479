"""Profiles: precedence (command line > environment > profile > default), passwords from
the environment or a command, errors naming the profile or the file and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from services import start_redis


@pytest.fixture
def dbs(redis_server):
    """Three databases of the private server, each holding one message on its own queue."""
    import redis

    urls = {}
    for db in (1, 2, 3):
        client = redis.Redis(port=redis_server.port, db=db)
        client.flushdb()
        client.lpush(f"queue{db}", json.dumps({"body": "", "headers": {}, "properties": {}}))
        client.close()
        urls[db] = redis_server.url(db)
    return urls


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def queue_names(result) -> list[str]:
    assert result.exit_code == 0, result
    return [q["name"] for q in result.json()]


def test_precedence_command_line_env_profile_default(run, dbs, tmp_path):
    config = write(tmp_path, f'[profiles.default]\nbroker = "{dbs[1]}"\n\n'
                             f'[profiles.other]\nbroker = "{dbs[2]}"\noutput = "json"\n')
    env = {"CELERYTOOL_CONFIG": str(config)}
    # the profile named default applies when none is named
    assert queue_names(run("queues", "-o", "json", env=env)) == ["queue1"]
    # -P before or after the command, and $CELERYTOOL_PROFILE
    assert queue_names(run("-P", "other", "queues", env=env)) == ["queue2"]
    assert queue_names(run("queues", "--profile", "other", env=env)) == ["queue2"]
    assert queue_names(run("queues", env={**env, "CELERYTOOL_PROFILE": "other"})) == ["queue2"]
    # environment over profile; command line over both
    env_over = {**env, "CELERYTOOL_PROFILE": "other", "CELERY_BROKER_URL": dbs[3]}
    assert queue_names(run("queues", env=env_over)) == ["queue3"]
    assert queue_names(run("queues", "-b", dbs[1], env=env_over)) == ["queue1"]
    # a profile's output applies; the command line wins over it, and the environment over a
    # profile not named with -P (one named with -P is part of the command line)
    assert run("-P", "other", "queues", "-o", "ndjson", env=env).ndjson()[0]["name"] == "queue2"
    assert run("queues", env={**env, "CELERYTOOL_PROFILE": "other", "CELERYTOOL_OUTPUT": "ndjson"}).ndjson()
    assert run("-P", "other", "queues", env={**env, "CELERYTOOL_OUTPUT": "ndjson"}).json()
    table = run("-P", "other", "queues", "-o", "table", env=env)
    assert table.stdout.startswith("queue ") and "queue2" in table.stdout


def test_a_profile_named_with_P_beats_the_environment(run, dbs, tmp_path):
    """-P is on the command line: its broker wins over CELERY_BROKER_URL (which still wins over
    $CELERYTOOL_PROFILE and the default profile), and `profiles` says which won."""
    config = write(tmp_path, f'[profiles.default]\nbroker = "{dbs[1]}"\n\n'
                             f'[profiles.other]\nbroker = "{dbs[2]}"\n')
    env = {"CELERYTOOL_CONFIG": str(config), "CELERY_BROKER_URL": dbs[3]}
    assert queue_names(run("-P", "other", "queues", "-o", "json", env=env)) == ["queue2"]
    assert queue_names(run("queues", "-P", "other", "-o", "json", env=env)) == ["queue2"]
    assert queue_names(run("queues", "-o", "json", env=env)) == ["queue3"]  # over the default profile
    assert queue_names(run("queues", "-o", "json", env={**env, "CELERYTOOL_PROFILE": "other"})) == ["queue3"]
    assert queue_names(run("-P", "other", "queues", "-b", dbs[1], "-o", "json", env=env)) == ["queue1"]
    rows = {s["setting"]: (s["value"], s["source"])
            for s in run("profiles", "-P", "other", "-o", "json", env=env).json()["settings"]}
    assert rows["broker"] == (dbs[2], "profile 'other' (-P), over $CELERY_BROKER_URL")
    rows = {s["setting"]: s["source"] for s in run("profiles", "-o", "json", env=env).json()["settings"]}
    assert rows["broker"] == "$CELERY_BROKER_URL"


def test_profiles_command_says_where_each_setting_came_from(run, dbs, tmp_path):
    config = write(tmp_path, f'[profiles.default]\nbroker = "{dbs[1]}"\nconnect_timeout = 3\n'
                             'priority_steps = [0, 5]\nkeyprefix = "pfx:"\n')
    env = {"CELERYTOOL_CONFIG": str(config), "CELERY_RESULT_BACKEND": dbs[2]}
    r = run("profiles", "-o", "json", "--sep", ":", env=env)
    assert r.exit_code == 0, r
    report = r.json()
    assert report["config"] == str(config) and report["active"] == "default"
    assert [p["name"] for p in report["profiles"]] == ["default"]
    rows = {s["setting"]: (s["value"], s["source"]) for s in report["settings"]}
    assert rows["broker"] == (dbs[1], "profile 'default'")
    assert rows["backend"] == (dbs[2], "$CELERY_RESULT_BACKEND")
    assert rows["sep"] == (":", "command line")
    assert rows["connect_timeout"] == (3.0, "profile 'default'")
    assert rows["priority_steps"] == ("0,5", "profile 'default'")
    assert rows["keyprefix"] == ("pfx:", "profile 'default'")
    assert rows["max_size"][1] == "default" and rows["output"][1] == "command line"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("locked"), extra=("--requirepass", "s3cr3t-pw"))
    yield server
    server.stop()


def test_password_from_env_or_command_never_shown(run, locked_redis, tmp_path):
    url = f"redis://127.0.0.1:{locked_redis.port}/0"
    config = write(tmp_path, f'[profiles.env]\nbroker = "{url}"\npassword_env = "LOCKED_PW"\n\n'
                             f'[profiles.cmd]\nbroker = "{url}"\n'
                             'password_command = "printf %s s3cr3t-pw"\n\n'
                             f'[profiles.none]\nbroker = "{url}"\n\n'
                             f'[profiles.failing]\nbroker = "{url}"\npassword_command = "exit 3"\n',
                   mode=0o644)  # readable by others, but it holds no password
    env = {"CELERYTOOL_CONFIG": str(config), "LOCKED_PW": "s3cr3t-pw"}
    for name in ("env", "cmd"):
        r = run("-P", name, "queues", "-o", "json", env=env)
        assert r.exit_code == 0, r
        assert "warning" not in r.stderr
    assert run("-P", "none", "queues", env=env).exit_code == 69  # the server wants the password
    unset = run("-P", "env", "queues", env={**env, "LOCKED_PW": None})
    assert unset.exit_code == 2 and "LOCKED_PW" in unset.stderr and "'env'" in unset.stderr
    failing = run("-P", "failing", "queues", env=env)
    assert failing.exit_code == 2 and "password_command exited 3" in failing.stderr
    shown = run("-P", "cmd", "profiles", "-o", "json", env=env)
    assert shown.exit_code == 0, shown
    assert "s3cr3t-pw" not in shown.stdout + shown.stderr
    rows = {s["setting"]: s for s in shown.json()["settings"]}
    assert rows["password"] == {"setting": "password", "value": "***", "source": "profile 'cmd': command"}


def test_a_password_in_a_file_others_can_read_draws_a_warning(run, dbs, tmp_path):
    url = dbs[1].replace("redis://", "redis://:inline-pw@")
    config = write(tmp_path, f'[profiles.default]\nbroker = "{url}"\n', mode=0o640)
    env = {"CELERYTOOL_CONFIG": str(config)}
    r = run("profiles", env=env)
    assert r.exit_code == 0, r
    assert f"{config} holds a password and is readable by other users" in r.stderr
    assert "inline-pw" not in r.stdout + r.stderr and "redis://:***@" in r.stdout
    config.chmod(0o600)
    assert "warning" not in run("profiles", env=env).stderr


@pytest.mark.parametrize("text, where", [
    ('[profiles.x]\nbroker = "redis://\n', "config.toml: malformed TOML: Illegal character"),
    ('[profiles.x]\nbroker = "redis://"\n\nbrokr = "x"\n', "config.toml:4: profile 'x' has an unknown key 'brokr'"),
    ('[profiles.x]\nconnect_timeout = "soon"\n', "config.toml:2: profile 'x': connect_timeout"),
    ('[profiles.x]\noutput = "csv"\n', "config.toml:2: profile 'x': output"),
    ('[profiles.x]\npriority_steps = [3, 6]\n', "config.toml:2: profile 'x': priority_steps"),
    ('[profile.x]\nbroker = "redis://"\n', "config.toml:1: unknown table or key 'profile'"),
])
def test_malformed_file_exits_2_naming_file_and_line(run, tmp_path, text, where):
    config = write(tmp_path, text)
    r = run("-P", "x", "queues", env={"CELERYTOOL_CONFIG": str(config)})
    assert r.exit_code == 2, r
    assert where in r.stderr
    if "Illegal" in where:
        assert "line 2" in r.stderr


def test_missing_profile_exits_2_naming_it(run, dbs, tmp_path):
    config = write(tmp_path, f'[profiles.prod]\nbroker = "{dbs[1]}"\n')
    env = {"CELERYTOOL_CONFIG": str(config)}
    r = run("queues", "-P", "stage", env=env)
    assert r.exit_code == 2 and "no profile 'stage' (-P/--profile)" in r.stderr and "prod" in r.stderr
    r = run("queues", env={**env, "CELERYTOOL_PROFILE": "stage"})
    assert r.exit_code == 2 and "'stage' ($CELERYTOOL_PROFILE)" in r.stderr
    r = run("queues", "-P", "prod", env={"CELERYTOOL_CONFIG": str(tmp_path / "absent.toml")})
    assert r.exit_code == 2 and "absent.toml does not exist" in r.stderr
    # no file and no profile named: built-in defaults, no complaint
    r = run("profiles", "-o", "json", env={"CELERYTOOL_CONFIG": str(tmp_path / "absent.toml")})
    assert r.exit_code == 0 and r.json()["exists"] is False


def test_config_path_order(tmp_path, monkeypatch):
    from celerytool.profiles import config_path

    monkeypatch.setenv("CELERYTOOL_CONFIG", str(tmp_path / "a.toml"))
    assert config_path() == tmp_path / "a.toml"
    monkeypatch.delenv("CELERYTOOL_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "celerytool" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".config" / "celerytool" / "config.toml"
    assert os.path.isabs(config_path())
