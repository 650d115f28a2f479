"""The command reference, generated from the click app: docs/commands.md and the man page.

Both are written from the same walk of the commands (their help, usage and options), the
option grammar table (cli/grammar.py) and the manual's exit-code page, so they cannot disagree
with ``--help``.  tests/test_docs.py fails when the committed copies are stale::

    python -m celerytool.cli.reference [ROOT]     # writes ROOT/docs/commands.md, ROOT/man/celerytool.1
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

COMMANDS_MD = Path("docs") / "commands.md"
MANPAGE = Path("man") / "celerytool.1"


def _paragraphs(text: str) -> Iterator[tuple[bool, str]]:
    """click help text -> (verbatim, text) paragraphs; a paragraph under ``\\b`` is verbatim."""
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text or "")):
        if block.startswith("\b"):
            yield True, block[1:].strip("\n")
        elif block.strip():
            yield False, " ".join(block.split())


def _usage(cmd: click.Command, name: str) -> str:
    ctx = click.Context(cmd, info_name=f"celerytool {name}")
    return f"celerytool {name} " + " ".join(cmd.collect_usage_pieces(ctx))


def _visible_options(cmd: click.Command, shared: bool) -> Iterator[click.Option]:
    from celerytool.cli.options import ConnectionOption, shown_shared

    for p in cmd.params:
        if not isinstance(p, click.Option) or p.hidden or p.name == "help":
            continue
        if isinstance(p, ConnectionOption) and not (shared or shown_shared(cmd, p)):
            continue
        yield p


def _flags(p: click.Option) -> str:
    flags = ", ".join(p.opts)
    if p.secondary_opts:
        flags += " / " + ", ".join(p.secondary_opts)
    return flags


def _help_of(p: click.Option) -> str:
    text = " ".join((p.help or "").split())
    if p.show_default and p.default is not None and not p.is_flag:
        text += f" [default: {p.default}]"
    if p.multiple:
        text += "" if "repeatable" in text.lower() else " Repeatable."
    return text


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


# --- docs/commands.md --------------------------------------------------------------------------
def markdown() -> str:
    from celerytool.cli import EPILOG, cli
    from celerytool.cli.grammar import GRAMMAR, commands, option_rows, value_text

    out = ["# Command reference", "",
           "Generated from the program by `python -m celerytool.cli.reference` (tests/test_docs.py fails",
           "when it is stale): the same text as each command's `--help`. Connection options are",
           "described once, [below](#connection-and-output-options); every command takes them before or",
           "after its name.", ""]
    cmds = list(commands())
    out += ["| command | what it does |", "|---|---|"]
    from celerytool.cli import COMMANDS

    out += [f"| [`{n}`](#{n}) | {_md_cell(COMMANDS[n][1])} |" for n, _ in cmds]
    out.append("")
    for name, cmd in cmds:
        out += [f"## {name}", "", "```text", _usage(cmd, name), "```", ""]
        for verbatim, text in _paragraphs(cmd.help or ""):
            out += (["```text", text, "```", ""] if verbatim else [text, ""])
        opts = list(_visible_options(cmd, shared=False))
        if opts:
            out += ["| option | value | meaning |", "|---|---|---|"]
            out += [f"| `{_md_cell(_flags(p))}` | {_md_cell(value_text(p))} | {_md_cell(_help_of(p))} |"
                    for p in opts]
            out.append("")
        if cmd.epilog:
            out += ["```text", inspect.cleandoc(cmd.epilog).replace("\b\n", ""), "```", ""]
    out += ["## Connection and output options", "",
            "Accepted by every command, before or after its name (`celerytool -b URL peek q` and",
            "`celerytool peek q -b URL` are the same); the command line beats the environment, which beats",
            "a profile. See [connection](connection.md) for URLs, TLS, Sentinel, profiles and permissions.", "",
            "| option | value | meaning |", "|---|---|---|"]
    out += [f"| `{_md_cell(_flags(p))}` | {_md_cell(value_text(p))} | {_md_cell(_help_of(p))} |"
            for p in _visible_options(cli, shared=True) if p.name not in ("version",)]
    out.append("")
    for _verbatim, text in _paragraphs(EPILOG):
        if text.startswith("Exit codes"):
            out += [" ".join(text.split()), ""]
    # the grammar: every option name, where it is used, what it means
    rows = [r for r in option_rows() if not r.hidden]
    by_name: dict[str, list] = {}
    for r in rows:
        by_name.setdefault(r.long, []).append(r)
    out += ["## Option index", "",
            "Every option of every command. An option name means the same thing, with the same short",
            "flag and the same kind of value, wherever it appears (tests/test_grammar.py checks it).",
            "Durations are written `90` (seconds), `90s`, `15m`, `1h30m`, `2d`, `1w` or `500ms`.", "",
            "| option | short | value | commands | meaning |", "|---|---|---|---|---|"]
    for long in sorted(by_name, key=lambda n: n.lstrip("-")):
        group = by_name[long]
        spec = GRAMMAR.get(long)
        shorts = sorted({s for r in group for s in r.shorts})
        meaning = spec.meaning if spec else group[0].help
        names = ", ".join(sorted({r.command for r in group}))
        out.append(f"| `{long}` | {' '.join(f'`{s}`' for s in shorts)} | {_md_cell(group[0].value)} "
                   f"| {names} | {_md_cell(meaning)} |")
    out.append("")
    return "\n".join(out)


# --- the man page -------------------------------------------------------------------------------
def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n"))


def _exit_codes() -> list[tuple[str, str]]:
    """The rows of the manual's exit-code page (the one description of each code)."""
    from celerytool.cli.manual import page_text

    rows = []
    for line in page_text("exit-codes").splitlines():
        m = re.match(r"\|\s*(\d+)\s*\|\s*(.*?)\s*\|\s*$", line)
        if m:
            rows.append((m.group(1), re.sub(r"`([^`]*)`", r"\1", m.group(2)).replace("\\|", "|")))
    return rows


def manpage() -> str:
    from celerytool import __version__
    from celerytool.cli import cli
    from celerytool.cli.grammar import commands, value_text
    from celerytool.cli.manual import pages

    def options(opts: list[click.Option]) -> list[str]:
        lines = []
        for p in opts:
            value = value_text(p)
            lines += [".TP", f"\\fB{_roff(_flags(p))}\\fR" + ("" if value == "flag" else f" \\fI{_roff(value)}\\fR"),
                      _roff(_help_of(p))]
        return lines

    def body(text: str) -> list[str]:
        lines = []
        for verbatim, para in _paragraphs(text):
            lines += [".PP", ".nf", _roff(para), ".fi"] if verbatim else [".PP", _roff(para)]
        return lines

    out = [f'.TH CELERYTOOL 1 "" "celerytool {__version__}" "User Commands"',
           ".SH NAME", "celerytool \\- see inside and repair Celery brokers and result backends",
           ".SH SYNOPSIS", ".B celerytool", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
           ".br", ".B celerytool help", "[\\fIPAGE\\fR|\\fICOMMAND\\fR]",
           ".SH DESCRIPTION", *body(cli.help or "")[1:],
           ".PP", "The manual's pages are shown by \\fBcelerytool help\\fR \\fIPAGE\\fR: "
           + _roff(", ".join(pages())) + ".",
           ".SH COMMANDS"]
    for name, cmd in commands():
        out += [".SS " + _roff(_usage(cmd, name)), *body(cmd.help or "")]
        out += options(list(_visible_options(cmd, shared=False)))
    root = list(_visible_options(cli, shared=True))
    out += [".SH \"OUTPUT OPTIONS\"", *options([p for p in root if p.name in ("output", "max_size")])]
    out += [".SH \"CONNECTION OPTIONS\"",
            ".PP", "Accepted by every command, before or after its name.",
            *options([p for p in root if p.name not in ("output", "max_size", "version")])]
    out += [".SH \"EXIT STATUS\""]
    for code, meaning in _exit_codes():
        out += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    out += [".SH ENVIRONMENT"]
    for var, meaning in ENVIRONMENT:
        out += [".TP", f"\\fB{_roff(var)}\\fR", _roff(meaning)]
    out += [".SH FILES", ".TP", "\\fB~/.config/celerytool/config.toml\\fR",
            "Connection profiles (or \\fB$XDG_CONFIG_HOME/celerytool/config.toml\\fR, or "
            "\\fB$CELERYTOOL_CONFIG\\fR): \\fBcelerytool help connection\\fR.",
            ".SH \"SEE ALSO\"", "\\fBcelery\\fR(1), \\fBredis\\-cli\\fR(1), \\fBrabbitmqctl\\fR(8)", ""]
    return "\n".join(out)


ENVIRONMENT = [
    ("CELERY_BROKER_URL", "The broker URL when -b is not given (as Celery reads it)."),
    ("CELERY_RESULT_BACKEND", "The result backend URL when --backend is not given."),
    ("CELERYTOOL_OUTPUT", "The default output format: table, json or ndjson."),
    ("CELERYTOOL_PROFILE", "The connection profile when -P is not given."),
    ("CELERYTOOL_CONFIG", "The profiles file."),
    ("CELERYTOOL_MASTER_NAME", "The Redis Sentinel master name."),
    ("CELERYTOOL_SENTINEL_PASSWORD", "The Redis Sentinel password."),
    ("CELERYTOOL_DEBUG", "Set to 1: a traceback for an internal error (exit 70)."),
    ("COLUMNS", "The width tables are laid out for."),
]


def write_all(root: Path) -> list[Path]:
    written = []
    for rel, make in ((COMMANDS_MD, markdown), (MANPAGE, manpage)):  # the man page lists docs/ pages
        path = root / rel
        text = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in write_all(Path(args[0] if args else ".")):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
