"""Importing a workbench module is cheap: in a fresh interpreter it pulls in no torch,
transformers, peft, trl, datasets, gradio or streamlit (docs/DESIGN.md: the dashboard starts fast and never holds a
model it did not ask for). Add a module to LIGHT when it must stay light.

Run: .venv/bin/python -m pytest -q tests/test_imports.py
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "gradio", "streamlit")
LIGHT = [
    "workbench",
    "workbench.config",
    "workbench.errors",
    "workbench.jsonl",
    "workbench.access",
    "workbench.registry",
    "workbench.registry.bases",
    "workbench.registry.adapters",
    "workbench.remote",
    "workbench.safety.names",
    "workbench.safety.redact",
    "workbench.bench",
    "workbench.bench.model",
    "workbench.bench.serving",
    "workbench.cli",
    "workbench.generation",
    "workbench.generation.settings",
    "workbench.generation.presets",
    "workbench.cli.presets",
    "workbench.generation.tokenprobs",
    "workbench.generation.tokenshift",
    "workbench.studio.tokenshift",
    "workbench.cli.token_shift",
    "workbench.generation.engine",
    "workbench.generation.streaming",
    "workbench.generation.loading",
    "workbench.generation.backends",
    "workbench.generation.backends.base",
    "workbench.generation.backends.llamacpp",
    "workbench.generation.backends.openai",
    "workbench.generation.router",
    "workbench.generation.lora_gguf",
    "workbench.cli.export_adapter",
    "workbench.store",
    "workbench.evaluation",
    "workbench.evaluation.metrics",
    "workbench.evaluation.suites",
    "workbench.evaluation.runner",
    "workbench.evaluation.results",
    "workbench.evaluation.views",
    "workbench.evaluation.fingerprints",
    "workbench.evaluation.parity",
    "workbench.ratings",
    "workbench.ratings.scoring",
    "workbench.ratings.agreement",
    "workbench.ratings.leaderboard",
    "workbench.training",
    "workbench.training.data",
    "workbench.training.jobs",
    "workbench.training.losses",
    "workbench.training.allocator",
    "workbench.training.synthetic",
    "workbench.studio",
    "workbench.studio.compare",
    "workbench.studio.lab",
    "workbench.studio.sweep",
    "workbench.cli.sweep",
    "workbench.studio.promptsets",
    "workbench.studio.judge",
    "workbench.store.judging",
    "workbench.cli.judge",
    "workbench.ui",
    "workbench.views.plots",
    "workbench.views.tokenview",
    "workbench.views.tokenshift",
    "workbench.views.markup",
    "workbench.gate.visitor",
    "workbench.gate.fields",
    "workbench.gate.sentence",
    "workbench.gate.limits",
    "workbench.gate.checkpoints",
]


def heavy_after(code: str) -> list[str]:
    """Run `code` in a fresh interpreter; the heavy packages it left in sys.modules."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", LIGHT)
def test_light_module_imports_no_heavy_package(module):
    assert heavy_after(f"import {module}") == []


def test_store_and_ratings_in_use_stay_light(tmp_path):
    code = f"""
from workbench.store import Store
from workbench.ratings import agreement, scoring
from workbench.cli import build_parser
build_parser()
with Store("sqlite:///{tmp_path / "light.db"}") as s:
    a = s.add_generation("x", "Hi", "Hello", None)
    b = s.add_generation("y", "Hi", "Hey", None)
    s.add_vote(a, b, "a", rater="alice")
    s.add_likert(a, 4, rater="alice")
    battles = s.battles()
    scoring.leaderboard(battles, bootstrap=10)
    scoring.likert_summary(s.likert(), bootstrap=10)
    agreement.agreement(agreement.pairwise_labels(battles))
    s.export_bytes("preferences", "csv")
"""
    assert heavy_after(code) == []
