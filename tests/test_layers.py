"""The layout and the dependency direction of docs/DESIGN.md, checked on the source: nothing points upward, nothing
goes round in a circle.

Every top-level module or package of `workbench` belongs to a layer. A module may import (at the top or inside
a function) modules of its own package and of packages in lower layers, never a package beside it in the same
layer nor anything above. No two modules import each other, directly or round a longer cycle. Only
`workbench.ui` imports gradio; nothing in `workbench` imports streamlit; the Streamlit pages never import
`workbench.ui` (what both UIs share lives below it: `workbench.gate`, `workbench.views`). A new top-level module or
package must be given a layer here.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"
LAYERS = [
    {"errors"},  # the one error type
    {"access"},  # who may do what: the admin check, client addresses
    {"config", "jsonl"},  # settings; the one JSON-lines reader
    {"safety"},  # names that reach the file system; secrets kept out of what is written or shown
    {"views"},  # figures, safe markup and token colouring that both UIs show (no gradio, no streamlit)
    {"remote"},  # remote models' registry entries
    {"registry"},  # what exists on disk (and on the servers registry.yaml names)
    {"generation"},  # the one way text is generated
    {"gate"},  # who is asking, what they may send and do, the one public error sentence: both UIs' one gate
    {"store"},  # the database (it checks generation settings before it keeps them)
    {"evaluation", "ratings"},  # measuring checkpoints; ranking them from votes
    {"training", "studio"},  # LoRA jobs (evaluated at each save); the logic behind the dashboard pages
    {"bench"},  # the benchmark, over all of the above
    {"api"},  # the OpenAI-compatible HTTP API: mounted by the app (ui) and served alone by `workbench serve` (cli)
    {"ui", "cli"},  # the leaves
    {"__main__"},  # `python -m workbench` -> cli
]
TOP_MODULES = {"__init__", "__main__", "access", "config", "errors", "remote", "jsonl"}
SHARED_UI = {"__init__.py"}  # importing workbench.ui itself stays light


def layer_of(top: str) -> int:
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"workbench.{top} has no layer in tests/test_layers.py")


def modules() -> list[Path]:
    return [
        path.relative_to(PACKAGE)
        for path in sorted(PACKAGE.rglob("*.py"))
        if not ("store" in path.parts and "migrations" in path.parts)
    ]


def dotted(rel: Path) -> str:
    parts = ["workbench", *rel.with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


KNOWN = {dotted(rel) for rel in modules()}


def workbench_imports(rel: Path) -> set[str]:
    """The workbench modules `rel` imports (a `from pkg import module` counts as the module)."""
    return {name for name in imported(PACKAGE / rel) if name in KNOWN and name not in ("workbench", dotted(rel))}


def test_top_level_is_packages_and_a_few_shared_modules():
    plain = {p.stem for p in PACKAGE.glob("*.py")}
    assert plain == TOP_MODULES, "the top of workbench/ keeps only what everything shares; put the rest in a package"
    assert len(plain) <= 8


@pytest.mark.parametrize("rel", modules(), ids=str)
def test_imports_point_down(rel):
    top = rel.parts[0].removesuffix(".py")
    if top == "__init__":
        return
    mine = layer_of(top)
    for name in workbench_imports(rel):
        other = name.split(".")[1]
        if other != top:
            assert layer_of(other) < mine, f"{dotted(rel)} (layer {mine}) imports {name} (layer {layer_of(other)})"
    for name in imported(PACKAGE / rel):
        root = name.split(".")[0]
        if root == "gradio":
            assert top == "ui" and rel.name not in SHARED_UI, f"{rel} imports gradio; only the Gradio tabs may"
        assert root != "streamlit", f"{rel} imports streamlit; only dashboard.py and pages/ may"


def test_no_import_cycles():
    graph = {dotted(rel): workbench_imports(rel) for rel in modules()}
    # A package's __init__ that only re-exports is part of its modules' cycle by construction; skip its edges.
    graph = {m: {n for n in deps if not (n in graph and m.startswith(n + "."))} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_pages_never_import_the_gradio_package():
    pages = Path(__file__).resolve().parents[1] / "pages"
    for path in sorted([*pages.glob("*.py"), pages.parent / "dashboard.py"]):
        for name in imported(path):
            assert not name.startswith("workbench.ui"), f"{path.name} imports {name}: pages use workbench.gate/views"
