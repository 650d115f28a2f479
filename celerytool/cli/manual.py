"""The manual's pages: docs/*.md of the repository, shipped inside the package.

``celerytool/docs`` is a link to ../docs in a checkout, and the wheel carries a copy (package
data), so an installed celerytool shows the manual without a checkout or a network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

ALIASES = {"connecting": "connection", "connect": "connection", "urls": "connection", "tls": "connection",
           "profiles": "connection", "sentinel": "connection", "permissions": "connection",
           "exit": "exit-codes", "exit-code": "exit-codes", "json": "output", "formats": "output",
           "where": "selection", "durations": "selection", "start": "getting-started",
           "versions": "compatibility", "benchmarks": "speed", "reference": "commands"}


def _docs() -> Traversable:
    from importlib.resources import files

    return files("celerytool").joinpath("docs")


def pages() -> dict[str, str]:
    """page name -> its title, in the order of the manual's index (then any others)."""
    from celerytool.errors import CeleryToolError, ExitCode

    try:
        entries = [e for e in _docs().iterdir() if e.name.endswith(".md") and e.name != "README.md"]
    except (FileNotFoundError, NotADirectoryError):
        raise CeleryToolError("the manual's pages are not installed with this copy of celerytool",
                              ExitCode.SOFTWARE) from None
    titles = {}
    for e in entries:
        first = e.read_text(encoding="utf-8").split("\n", 1)[0]
        titles[e.name[:-3]] = first.lstrip("# ").strip()
    order = [line.split("](", 1)[1].split(".md", 1)[0] for line in page_text("README").splitlines()
             if line.startswith("- [") and "](" in line]
    return {n: titles[n] for n in [*[o for o in order if o in titles], *sorted(set(titles) - set(order))]}


def page_text(name: str) -> str:
    from celerytool.errors import NotFound

    try:
        return _docs().joinpath(f"{name}.md").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no manual page {name!r}") from None
