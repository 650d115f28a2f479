"""celerytool help: a page of the manual (cli/manual.py), a command's --help, or the man page."""

from __future__ import annotations

from typing import Any

import click

from celerytool.cli.manual import ALIASES, page_text, pages


def _complete(ctx: Any, param: Any, incomplete: str) -> list[str]:
    from celerytool.cli import COMMANDS

    try:
        names = list(pages())
    except Exception:
        names = []
    return [n for n in [*names, *COMMANDS] if n.startswith(incomplete)]


@click.command("help")
@click.argument("page", required=False, shell_complete=_complete)
@click.option("--man", is_flag=True, help="Print the man page (roff): celerytool help --man | man -l -")
def command(page: str | None, man: bool) -> None:
    """Show a page of the manual, or a command's --help.

    With no PAGE, list the pages. The pages are the files of docs/ in the
    repository, installed with the package. A command name shows its
    --help, unless a page has that name (results: the page).

    \b
    Examples:
      celerytool help
      celerytool help connection
      celerytool help selection | less
      celerytool help peek
      celerytool help --man | man -l -
    """
    from celerytool.cli import COMMANDS, cli
    from celerytool.errors import UsageError

    if man:
        from celerytool.cli.reference import manpage

        click.echo(manpage(), nl=False)
        return
    if page is None:
        listed = pages()
        width = max(map(len, listed))
        lines = ["The manual (celerytool help PAGE):", ""]
        lines += [f"  {name.ljust(width)}  {title}" for name, title in listed.items()]
        lines += ["", "Also: celerytool help COMMAND (COMMAND --help, where no page has that name), "
                  "celerytool help --man (the man page)."]
        click.echo("\n".join(lines))
        return
    name = ALIASES.get(page.lower(), page.lower())
    listed = pages()
    if name not in listed and name in COMMANDS and name != "help":  # a page of that name wins
        ctx = click.get_current_context()
        cmd = cli.get_command(ctx, name)
        assert cmd is not None
        with click.Context(cmd, info_name=name, parent=ctx.parent) as sub:
            click.echo(cmd.get_help(sub))
        return
    if name not in listed:
        import difflib

        close = difflib.get_close_matches(name, [*listed, *COMMANDS], n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"no manual page or command {page!r}{hint}; `celerytool help` lists the pages")
    text = page_text(name)
    import sys

    if sys.stdout.isatty():
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)
