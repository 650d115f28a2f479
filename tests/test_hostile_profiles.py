"""Hostile config files and password commands (issue 16, item 5): a device, a FIFO or an
oversized file is refused without reading it (exit 2); a password command is bounded in what it
prints and in time, and everything it started is killed when it overruns."""

from __future__ import annotations

import os
import subprocess
import sys

from services import wait_for


def cli(*args, env, timeout=60):
    full = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERYTOOL_OUTPUT")}
    return subprocess.run([sys.executable, "-m", "celerytool", *map(str, args)], env={**full, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_dev_zero_as_config_is_refused_without_reading_it():
    r = cli("profiles", env={"CELERYTOOL_CONFIG": "/dev/zero"})
    assert r.returncode == 2, r
    assert "/dev/zero is not a regular file" in r.stderr and "Traceback" not in r.stderr


def test_a_fifo_as_config_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    r = cli("profiles", env={"CELERYTOOL_CONFIG": str(fifo)}, timeout=30)
    assert r.returncode == 2, r
    assert "not a regular file" in r.stderr


def test_an_oversized_config_is_refused(tmp_path):
    big = tmp_path / "config.toml"
    big.write_text("[profiles.x]\n" + "# padding\n" * 200_000)  # 2 MB of valid TOML
    r = cli("profiles", env={"CELERYTOOL_CONFIG": str(big)})
    assert r.returncode == 2, r
    assert "more than a config file's" in r.stderr


def _config(tmp_path, command):
    path = tmp_path / "config.toml"
    path.write_text(f'[profiles.p]\nbroker = "redis://127.0.0.1:1/0"\npassword_command = """{command}"""\n')
    path.chmod(0o600)
    return str(path)


def test_a_password_command_printing_400_mb_is_stopped(tmp_path):
    config = _config(tmp_path, "head -c 400000000 /dev/zero | tr '\\\\0' a")
    r = cli("-P", "p", "queues", env={"CELERYTOOL_CONFIG": config})
    assert r.returncode == 2, r.stderr[-500:]
    assert "password_command printed more than 65536 bytes" in r.stderr
    assert "aaaa" not in r.stderr


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1].startswith("Z")  # a zombie waiting for init is gone too
    except FileNotFoundError:
        return True


def test_a_password_command_past_the_timeout_is_killed_with_its_children(run, tmp_path, monkeypatch):
    import celerytool.profiles

    monkeypatch.setattr(celerytool.profiles, "PASSWORD_COMMAND_TIMEOUT", 2.0)
    pidfile = tmp_path / "child.pid"
    config = _config(tmp_path, f"sleep 300 & echo $! > {pidfile}; wait")
    r = run("-P", "p", "queues", env={"CELERYTOOL_CONFIG": config})
    assert r.exit_code == 2, r
    assert "password_command ran longer than 2 s; it was stopped" in r.stderr
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    wait_for(lambda: _gone(child), timeout=10)

