"""The shell completions in completions/ are current, and completing works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import get_completion_class
from timing import within

from celerytool import completions
from celerytool.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("shell", sorted(completions.FILES))
def test_committed_scripts_are_current(shell):
    committed = (ROOT / "completions" / completions.FILES[shell]).read_text(encoding="utf-8")
    assert committed == completions.script(shell), (
        "completions/ is stale: run `python -m celerytool.completions`")


def complete(args, incomplete):
    comp = get_completion_class("bash")(cli, {}, "celerytool", "_CELERYTOOL_COMPLETE")
    return [item.value for item in comp.get_completions(args, incomplete)]


def test_command_names_complete():
    assert complete([], "pe") == ["peek"]
    assert set(complete([], "")) >= {"queues", "bindings", "peek", "decode"}
    assert all(name in COMMANDS for name in complete([], ""))


def test_options_complete_after_a_command():
    assert "--all" in complete(["peek"], "--a")
    assert complete(["queues"], "--ou") == ["--output"]
    assert complete(["queues", "-o"], "nd") == ["ndjson"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_completes_through_the_cli(tmp_path):
    """Source the committed bash script in a real bash, as a shell would."""
    shim = tmp_path / "celerytool"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m celerytool "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    script = (f"source {ROOT / 'completions' / 'celerytool.bash'}\n"
              "COMPREPLY=(); COMP_WORDS=(celerytool bind); COMP_CWORD=1\n"
              "_celerytool_completion celerytool\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["bindings"], out


def bash_words(line):
    """COMP_WORDS as bash makes them: split at blanks and at each ':' or '=' (COMP_WORDBREAKS)."""
    import re

    return [w for w in re.split(r"\s+|([:=])", line) if w]


def complete_env(line, **extra):
    """What celerytool answers when the bash script calls it for ``line`` (cursor at the end)."""
    words = bash_words(line)
    new_word = line.endswith(" ")
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update({"_CELERYTOOL_COMPLETE": "bash_complete", "COMP_LINE": line, "COMP_WORDS": " ".join(words),
                "COMP_CWORD": str(len(words) if new_word else len(words) - 1),
                "COMP_CUR": "" if new_word else words[-1], **extra})
    out = subprocess.run([sys.executable, "-m", "celerytool"], env=env, capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    return [row.split(",", 1)[1] for row in out.stdout.splitlines() if row], out.stderr


def test_completion_with_a_url_on_the_line():
    got, _ = complete_env("celerytool -b redis://h:6379/0 peek --l")
    assert got == ["--limit"]
    got, _ = complete_env("celerytool peek -b amqp://u:p@h:5672/v --full")
    assert got == ["--full-ids"]
    got, _ = complete_env("celerytool --broker=redis://h:6379/0 pu")
    assert got == ["purge"]


def test_queue_names_complete_from_the_broker(redis_url, celery_app):
    celery_app.send_task("tasks.a", queue="reports")
    celery_app.send_task("tasks.a", queue="reindex")
    celery_app.send_task("tasks.a", queue="celery")
    got, _ = complete_env(f"celerytool -b {redis_url} peek re")
    assert sorted(got) == ["reindex", "reports"]
    got, _ = complete_env(f"celerytool move celery -b {redis_url} rep")
    assert got == ["reports"]
    got, _ = complete_env("celerytool peek ", CELERY_BROKER_URL=redis_url)
    assert sorted(got) == ["celery", "reindex", "reports"]


def test_queue_names_complete_from_a_profile_broker(redis_url, celery_app, tmp_path):
    celery_app.send_task("tasks.a", queue="reports")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.work]\nbroker = "{redis_url}"\n')
    got, err = complete_env("celerytool peek -P work rep", CELERYTOOL_CONFIG=str(config))
    assert got == ["reports"], err
    got, _ = complete_env("celerytool peek rep", CELERYTOOL_CONFIG=str(config), CELERYTOOL_PROFILE="work")
    assert got == ["reports"]


def test_queue_completion_is_silent_and_quick_when_the_broker_is_away():
    import time

    from services import free_port

    start = time.monotonic()
    got, err = complete_env(f"celerytool -b redis://127.0.0.1:{free_port()}/0 peek ")
    assert got == [] and err == ""
    assert time.monotonic() - start < within(5)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_completes_after_a_url(tmp_path):
    """The committed script in a real bash, with COMP_WORDS split at ':' as bash splits them."""
    shim = tmp_path / "celerytool"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m celerytool "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    line = "celerytool -b redis://h:6379/0 peek --l"
    words = " ".join(f"'{w}'" for w in bash_words(line))
    script = (f"source {ROOT / 'completions' / 'celerytool.bash'}\n"
              f"COMPREPLY=(); COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
              f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n"
              "_celerytool_completion celerytool\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run(["bash", "--norc", "-c", script], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["--limit"], out
