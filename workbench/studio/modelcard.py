"""The model card of a promoted adapter: README.md in its folder, as the Hugging Face Hub reads it.

    path = write_card(settings, report)        # report: workbench.studio.lineage.Report
    ModelCard.load(path).data.base_model        # the metadata reads back

Built with huggingface_hub's ModelCard and ModelCardData, so the YAML front matter is the Hub's own: base_model (a
Hub id where the base has one: the embedded model's GGUF repository, or a hub base's id; a local folder is named in
the text only, since the Hub links base_model to a model page), library_name peft, tags, the licence and a
model-index with the suites' metrics (eval_results). The text says where the adapter came from: its parent, the
training data (files, counts, SHA-256), the votes it was trained on, the hyperparameters, the verdict against its
parent with its evidence and the rule behind it. `ModelCard.validate` asks the Hub over the network, so it is not
called here; `check_card` reads the card back offline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import EMBEDDED_NAME, EMBEDDED_REPO, resolve_base
from workbench.studio.lineage import cell, markdown_table

CARD = "README.md"
TAGS = ["peft", "lora", "workbench", "text-generation"]
EMBEDDED_LICENSE = "apache-2.0"  # SmolLM2's licence (its model card on the Hub)


def hub_base(settings: Settings, name: str) -> str | None:
    """The Hub id of the base model called `name` (None where it has none: a local folder or file)."""
    if name == EMBEDDED_NAME:
        return EMBEDDED_REPO
    try:
        base = resolve_base(settings, name)
    except WorkbenchError:
        return None
    return base.source if base.kind == "hub" else None


def _data_section(meta: dict[str, Any]) -> str:
    datasets = meta.get("datasets") or {}
    rows = [
        (split, Path(str(d.get("file") or d.get("path") or "")).name, d.get("kept"), d.get("records"), d.get("sha256"))
        for split, d in datasets.items()
        if isinstance(d, dict) and "split_from" not in d
    ]
    text = markdown_table(rows, ("split", "file", "examples kept", "records", "SHA-256")) if rows else "Not recorded."
    held = datasets.get("validation") if isinstance(datasets.get("validation"), dict) else {}
    if held.get("split_from"):
        text += f"\n\nValidation: {held.get('fraction')} of the training file held out (seed {held.get('seed')})."
    if meta.get("votes"):
        text += "\n\nPreference pairs from the Arena's votes, with these filters and counts:\n\n"
        text += markdown_table([(k, v) for k, v in meta["votes"].items()], ("filter or count", "value"))
    return text


def card_text(settings: Settings, report: Any, license: str | None = None) -> str:
    """The whole README.md: YAML front matter from ModelCardData, then the text."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    adapter = report.lineage.adapter
    meta = adapter.meta
    base = meta.get("base_model") or adapter.base_model
    hub_id = hub_base(settings, base)
    licence = license or (EMBEDDED_LICENSE if base == EMBEDDED_NAME else "other")
    results = [
        EvalResult(
            task_type="text-generation",
            dataset_type=d.suite,
            dataset_name=d.suite,
            metric_type=d.metric,
            metric_value=d.child,
            metric_name=d.name.split(" on ")[0],
        )
        for d in report.metrics
        if d.child is not None
    ]
    data = ModelCardData(
        base_model=hub_id,
        library_name="peft",
        license=licence,
        # The Hub asks "other" to be named; the text says whose terms apply.
        license_name="base-model-and-data-licences" if licence == "other" else None,
        tags=[*TAGS, meta.get("method") or "sft"],
        model_name=adapter.name.replace("/", "-"),
        eval_results=results or None,
        pipeline_tag="text-generation",
    )
    hyper = meta.get("hyperparameters") or {}
    body = [
        f"# {adapter.name}",
        "",
        f"A LoRA adapter ({meta.get('method') or 'sft'}) for `{base}`"
        + (f" ([{hub_id}](https://huggingface.co/{hub_id}))" if hub_id else "")
        + f", trained with Workbench; step {meta.get('step') or adapter.step or 'unknown'}.",
        "",
        "## Verdict against its parent",
        "",
        report.markdown(),
        "",
        "## Training data",
        "",
        _data_section(meta),
        "",
        "The data files' own licences apply to what the adapter learned from them.",
        "",
        "## Hyperparameters",
        "",
        markdown_table([(k, v) for k, v in hyper.items() if k not in ("data", "val_data")], ("name", "value")),
        "",
        "## Losses",
        "",
        f"Training loss {cell(meta.get('train_loss'))}, validation loss {cell(meta.get('val_loss'))}.",
    ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")
    return str(card)


def write_card(settings: Settings, report: Any, license: str | None = None) -> Path:
    """Write README.md into the adapter's folder (through a temporary file and a rename); returns its path."""
    path = report.lineage.adapter.path / CARD
    tmp = path.with_name(f".{CARD}.tmp")
    tmp.write_text(card_text(settings, report, license), encoding="utf-8")
    os.replace(tmp, path)
    return path


def check_card(path: Path) -> dict[str, Any]:
    """Read a card back as the Hub's library does (offline) and return its metadata; raises WorkbenchError when
    the front matter does not parse."""
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(path)
    except Exception as exc:  # the library raises ValueError or YAML errors alike
        raise WorkbenchError(f"The model card {path} does not read back: {exc}.") from None
    return card.data.to_dict()
