"""The dependency direction of DESIGN.md, checked on the source: nothing points upward.

Every module of `workbench` belongs to a layer; it may import (at the top or inside a function) only
modules of its own layer or below. The UI packages are leaves, and only `workbench.gradio_ui` imports
gradio; nothing in `workbench` imports streamlit. A new module must be given a layer here.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
LAYERS = [
    {"errors", "config", "generation", "markup", "jsonl"},
    {"registry", "fingerprints"},
    {
        "loading",
        "data",
        "metrics",
        "store",
        "ratings",
        "agreement",
        "plots",
        "promptsets",
        "leaderboard",
    },
    {
        "engine",
        "streaming",
        "evals",
        "evaluate",
        "evalstore",
        "finetune",
        "compare",
        "lab",
        "jobs",
        "bench",
        "metricviews",
    },
    {"cli", "gradio_ui", "__main__"},
]


def layer_of(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"workbench.{top} has no layer in tests/test_layers.py")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] != "store" or "migrations" not in rel.parts:
            yield rel


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "workbench":
                names |= {f"workbench.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("rel", list(modules()), ids=str)
def test_imports_point_down_or_sideways(rel):
    top = rel.parts[0].removesuffix(".py")
    if top == "__init__":
        return
    mine = layer_of(top)
    for name in imported(PACKAGE / rel):
        if name.startswith("workbench."):
            other = name.split(".")[1]
            assert layer_of(other) <= mine, f"workbench.{top} (layer {mine}) imports {name} (layer {layer_of(other)})"
        root = name.split(".")[0]
        if root == "gradio":
            assert top == "gradio_ui", f"{rel} imports gradio; only workbench/gradio_ui/ may"
        assert root != "streamlit", f"{rel} imports streamlit; only dashboard.py and pages/ may"
