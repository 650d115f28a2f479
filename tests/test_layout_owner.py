"""kombu's Redis layout is spelled in one module (celerytool/kombu_layout.py): a string in the
code of any other module that holds ``_kombu.binding`` or the priority separator fails here.
Docstrings and comments may name them for readers."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "celerytool"
OWNER = ROOT / "kombu_layout.py"
SPELLINGS = ("_kombu.binding", "\x06\x16", "\\x06\\x16")


def docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def spelled(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip:
            value = node.value
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if isinstance(text, str) and any(s in text for s in SPELLINGS):
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {text!r}")
    return found


def test_only_kombu_layout_spells_the_layout():
    found = [hit for path in sorted(ROOT.rglob("*.py")) if path != OWNER for hit in spelled(path)]
    assert not found, "kombu's layout spelled outside celerytool/kombu_layout.py:\n" + "\n".join(found)


def test_the_owner_spells_it_and_the_check_would_see_a_copy(tmp_path):
    assert spelled(OWNER)  # the names are there
    copy = tmp_path / "celerytool" / "copy.py"
    copy.parent.mkdir()
    copy.write_text('"""_kombu.binding in a docstring is fine."""\nKEY = "_kombu.binding.celery"\n')
    global ROOT
    saved, ROOT = ROOT, tmp_path / "celerytool"
    try:
        assert [h.split(":")[1] for h in spelled(copy)] == ["2"]
    finally:
        ROOT = saved
