"""The shell completions in completions/ are current, and completing works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import get_completion_class

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
