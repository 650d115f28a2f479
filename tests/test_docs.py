"""The manual: README as a landing page, docs/ pages that link up, the generated command reference
and man page current, `celerytool help` showing the same pages, no figure stated twice."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from celerytool.cli import COMMANDS, cli, reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.stem for p in DOCS.glob("*.md") if p.name != "README.md")


def test_the_command_reference_is_current():
    committed = (ROOT / reference.COMMANDS_MD).read_text(encoding="utf-8")
    assert committed == reference.markdown(), "docs/commands.md is stale: run `python -m celerytool.cli.reference`"


def test_the_man_page_is_current():
    committed = (ROOT / reference.MANPAGE).read_text(encoding="utf-8")
    assert committed == reference.manpage(), "man/celerytool.1 is stale: run `python -m celerytool.cli.reference`"


def test_the_reference_has_every_command_and_option():
    text = reference.markdown()
    for name in COMMANDS:
        assert f"\n## {name}\n" in text, f"docs/commands.md misses {name}"
    man = reference.manpage()
    for name in COMMANDS:
        roff = name.replace("-", "\\-")  # roff escapes hyphens (rate-limit, time-limit)
        assert f".SS celerytool {roff} " in man, f"the man page misses {name}"
    from celerytool.cli.grammar import option_rows

    for row in option_rows():
        if not row.hidden:
            assert f"`{row.long}`" in text, row


def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250
    text = "\n".join(lines)
    assert "bash scripts/quickstart.sh" in text and "bash scripts/test.sh" in text
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    for page in PAGES:
        assert f"(docs/{page}.md)" in text, f"README does not link docs/{page}.md"


def test_the_manual_index_lists_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"]({page}.md)" in index, f"docs/README.md does not list {page}.md"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_links_between_pages_resolve(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: link to missing {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{path.name}: no heading for #{anchor} in {dest.name}"


@pytest.mark.parametrize("page", PAGES)
def test_celerytool_help_shows_the_page(page):
    r = CliRunner().invoke(cli, ["help", page])
    assert r.exit_code == 0, r.output
    assert r.output == (DOCS / f"{page}.md").read_text(encoding="utf-8")


def test_celerytool_help_lists_pages_and_refuses_unknown_ones():
    r = CliRunner().invoke(cli, ["help"])
    assert r.exit_code == 0
    for page in PAGES:
        assert re.search(rf"^  {re.escape(page)}\s", r.output, re.M), page
    r = CliRunner().invoke(cli, ["help", "conection"])
    assert r.exit_code == 2 and "connection" in r.output
    r = CliRunner().invoke(cli, ["help", "peek"], prog_name="celerytool")
    assert r.exit_code == 0 and "Usage: celerytool peek" in r.output
    r = CliRunner().invoke(cli, ["help", "--man"])
    assert r.exit_code == 0 and r.output.startswith(".TH CELERYTOOL 1")


def test_no_page_sends_the_reader_to_the_readme_for_what_moved():
    for path in DOCS.glob("*.md"):
        assert "see README" not in path.read_text(encoding="utf-8"), path.name


def _figures(text: str) -> set[str]:
    """Measured figures: ratios (29.0x, 1.46x), rates (63,121 msg/s), shares (19%)."""
    found = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?x(?!\w)", text))
    found |= set(re.findall(r"\d[\d,]*(?:\.\d+)? (?:msg/s|tasks/s|events/s|examined/s|keys examined/s)", text))
    return found


def test_no_measured_figure_is_stated_twice():
    speed = _figures((DOCS / "speed.md").read_text(encoding="utf-8"))
    assert "35.2x" in speed and "44,202 tasks/s" in speed and "25.6x" in speed  # found (send --from, retry)
    for path in [ROOT / "README.md", *DOCS.glob("*.md")]:
        if path.name in ("speed.md", "commands.md"):
            continue
        again = _figures(path.read_text(encoding="utf-8")) & speed
        assert not again, f"{path.name} repeats figures of docs/speed.md: {sorted(again)} (link to it instead)"


def _example_lines():
    """Every `celerytool ...` command line in README.md and docs/ (not commands.md: generated)."""
    import shlex

    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        if path.name == "commands.md":
            continue
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:console|sh|bash|text)?\n(.*?)```", text, re.S):
            joined = block.replace("\\\n", " ")
            for line in joined.splitlines():
                line = line.strip().removeprefix("$ ").strip()
                for part in re.split(r"\|\||&&|\||;|\$\(|`", line):
                    part = part.split(" #", 1)[0].strip().rstrip(")")
                    if not part.startswith("celerytool "):
                        continue
                    try:
                        words = shlex.split(part)
                    except ValueError:
                        continue
                    for i, w in enumerate(words):  # a redirection ends the command's words
                        if re.match(r"\d?[<>]", w):
                            words = words[:i]
                            break
                    yield path.name, part, words[1:]


EXAMPLES = list(_example_lines())


@pytest.mark.parametrize(("page", "line", "words"), EXAMPLES, ids=[f"{p}:{line[:50]}" for p, line, _ in EXAMPLES])
def test_every_example_in_the_manual_parses(page, line, words):
    """A renamed or removed option, a bad duration, a command that does not exist: the example
    fails here (the command is parsed, never run)."""
    import click

    ctx = cli.make_context("celerytool", list(words), resilient_parsing=False)
    with warnings.catch_warnings():  # click 8.2+ deprecates protected_args; in click 9 args holds all
        warnings.simplefilter("ignore", DeprecationWarning)
        rest = [*getattr(ctx, "protected_args", ()), *ctx.args]
    if not rest:
        return
    cmd = cli.get_command(ctx, rest[0])
    assert cmd is not None, f"{page}: no command {rest[0]!r} in: {line}"
    try:
        cmd.make_context(rest[0], rest[1:], parent=ctx)
    except click.exceptions.Exit:
        pass
    except click.UsageError as exc:
        if "No such file or directory" in exc.format_message():  # an example's input file
            return
        if line in SHOWN_FAILING:
            return
        raise AssertionError(f"{page}: `{line}`: {exc.format_message()}") from None
    assert line not in SHOWN_FAILING, f"{page}: `{line}` is shown failing, but parses"
    hidden = {o for p in cmd.params if getattr(p, "hidden", False) for o in p.opts}
    used = {w.split("=", 1)[0] for w in rest[1:] if w.startswith("-")}
    assert not used & hidden, f"{page}: `{line}` uses an old spelling: {sorted(used & hidden)}"


SHOWN_FAILING = {"celerytool forget --older-than 1x --all"}  # examples of an error message


def _cells(row: str) -> int:
    """Cells of a markdown table row: GitHub splits at every unescaped |, in code spans too."""
    return len(re.split(r"(?<!\\)\|", row.strip().strip("|")))


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_table_rows_have_as_many_cells_as_their_header(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        if header is None:
            header = _cells(line)
        else:
            assert _cells(line) == header, f"{path.name}: a row of {_cells(line)} cells under a header of {header}: {line[:120]}"
