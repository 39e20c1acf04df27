"""The docs say what the code does: docs/reference.md is what `workbench docs` writes now, every `workbench ...`
command in README.md and docs/*.md parses with today's flags, every path docs/DESIGN.md's layout names exists, and
the README keeps the Space's front matter and links only to files that exist.

Run: .venv/bin/python -m pytest -q tests/test_docs.py
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from workbench.cli import build_parser, main
from workbench.cli.docs import REFERENCE, render

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS = ("workbench ", ".venv/bin/workbench ", "python -m workbench ")
# Pages the README links to that other branches of issues 17, 18, 20 and 21 write today; drop each once it lands.


def test_the_reference_is_current(capsys, tmp_path):
    assert REFERENCE.read_text(encoding="utf-8") == render(), "docs/reference.md is stale: run `make docs`"
    assert main(["docs", "--check"]) == 0 and "reference.md is current." in capsys.readouterr().out
    stale = tmp_path / "reference.md"
    stale.write_text("# Reference\n", encoding="utf-8")
    assert main(["docs", "--check", "--out", str(stale)]) == 1
    assert "out of date: run `workbench docs`" in capsys.readouterr().err
    assert main(["docs", "--out", str(stale)]) == 0 and stale.read_text(encoding="utf-8") == render()


def commands(page: Path) -> list[str]:
    """The `workbench ...` lines of a page's fenced code blocks, continuation lines joined."""
    found, block = [], False
    text = page.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("```"):
            block = not block
        elif block and line.lstrip().startswith(PROGRAMS):
            found.append(line.strip())
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_in_the_docs_parses(page):
    parser = build_parser()
    for line in commands(page):
        words = shlex.split(line, comments=True)
        argv = words[words.index("workbench") + 1 :] if "workbench" in words else words[1:]
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            if exc.code == 0:  # --help
                continue
            pytest.fail(f"{page.name}: `{line}` does not parse (exit {exc.code})")


def test_the_readme_has_commands_and_the_space_front_matter():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    front = text.split("---\n")[1]
    assert text.startswith("---\n") and "sdk: gradio" in front and "app_file: app.py" in front
    assert len(commands(ROOT / "README.md")) >= 2 and len(text) < 12_000  # what a user needs; the rest in docs/
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name} links to {target}"


def test_the_design_layout_names_only_what_exists():
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    layout = text.split("## Layout", 1)[1].split("```", 2)[1]
    parents: dict[int, Path] = {}
    names = 0
    for line in layout.splitlines():
        if not line.strip() or line.startswith(" " * 6):  # a description's continuation line
            continue
        indent = len(line) - len(line.lstrip())
        parent = parents.get(indent - 2, ROOT) if indent else ROOT
        first = re.split(r"\s{2,}", line.strip())[0]
        for name in (n.strip() for n in first.split(",")):
            path = parent / name.rstrip("/")
            assert path.exists(), f"docs/DESIGN.md names {path.relative_to(ROOT)}, which does not exist"
            names += 1
            if name.endswith("/"):
                parents[indent] = path
    assert names > 20
