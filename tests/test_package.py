"""Workbench as a package: pyproject.toml declares requirements.txt's pins and the `workbench` console script,
`make install` installs it in place without resolving a dependency twice, and `workbench --help` lists every
command module in workbench/cli/ (commands are found, not listed, so none can be forgotten).

Run: .venv/bin/python -m pytest -q tests/test_package.py
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from email.parser import Parser
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import workbench.cli
from workbench.cli import HELPERS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _requirements(lines) -> set[str]:
    return {str(Requirement(line)) for line in lines if line.strip() and not line.strip().startswith("#")}


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> Path:
    """The wheel metadata setuptools builds from pyproject.toml (what `pip install` would record)."""
    out = tmp_path_factory.mktemp("metadata")
    code = f"from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out / done.stdout.strip().splitlines()[-1]


def test_the_package_declares_the_pinned_requirements_and_the_console_script(metadata):
    meta = Parser().parsestr((metadata / "METADATA").read_text(encoding="utf-8"))
    assert meta["Name"] == "workbench"
    pins = _requirements((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert _requirements(meta.get_all("Requires-Dist")) == pins  # the Space's pin list is the package's
    scripts = (metadata / "entry_points.txt").read_text(encoding="utf-8")
    assert "[console_scripts]\nworkbench = workbench.cli:main" in scripts
    assert EntryPoint("workbench", "workbench.cli:main", "console_scripts").load() is main


def test_make_install_installs_the_package_in_place_after_the_pins():
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").split("$(VENV)/.runtime:", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in recipe.splitlines() if line.startswith("\t$(PIP)")]
    assert steps[-3:] == [
        "$(PIP) install -q -r requirements.txt",
        "$(PIP) install -q --no-deps $(EMBEDDED)",
        "$(PIP) install -q --no-deps -e .",  # nothing resolved twice: the pins are installed already
    ]
    assert "pyproject.toml" in recipe.splitlines()[0]  # a changed pyproject reinstalls


def test_help_lists_every_command_module(capsys):
    modules = {m.name for m in pkgutil.iter_modules(workbench.cli.__path__)} - set(HELPERS)
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    listed = set(re.findall(r"^    ([a-z][a-z-]*)", text.split("COMMAND\n", 1)[1], flags=re.MULTILINE))
    assert listed == {name.replace("_", "-") for name in modules}
    for name in modules:  # each is a command: its parser and its handler
        module = importlib.import_module(f"workbench.cli.{name}")
        assert callable(module.add_parser) and callable(module.run), name
    assert {"sweep", "presets", "export-model", "docs"} <= listed
    parser = build_parser()
    for name in listed:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0, name
