"""Shell completion scripts for bash, zsh and fish, generated from the click app.

The scripts are click's own (bash's with the word splitting fixed, see
cli/completion.py): each calls ``celerytool`` back with
``_CELERYTOOL_COMPLETE`` set, so commands and options complete as the
installed version defines them.  Regenerate the copies in ``completions/``
when click changes (tests/test_completions.py notices)::

    python -m celerytool.completions [DIR]     # default: ./completions
"""

from __future__ import annotations

import sys
from pathlib import Path

PROG = "celerytool"
COMPLETE_VAR = "_CELERYTOOL_COMPLETE"
FILES = {"bash": "celerytool.bash", "zsh": "_celerytool", "fish": "celerytool.fish"}


def script(shell: str) -> str:
    """The completion script for ``shell``, as ``_CELERYTOOL_COMPLETE=<shell>_source`` prints it."""
    from click.shell_completion import get_completion_class

    from celerytool.cli import cli
    from celerytool.cli.completion import register

    register()  # bash: our script, which sends the line as typed (URLs hold ':')

    cls = get_completion_class(shell)
    if cls is None:
        raise ValueError(f"no completion for shell {shell!r}")
    complete = cls(cli, {}, PROG, COMPLETE_VAR)
    # the template, not source(): bash's source() also probes the local bash version
    text = cls.source_template % complete.source_vars()
    return text if text.endswith("\n") else text + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, name in FILES.items():
        path = directory / name
        path.write_text(script(shell), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in write_all(Path(args[0] if args else "completions")):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
