"""Child against parent on a real store: lineage from the runs' workbench.json, the evidence read back, promote and
its model card, and the default a new visitor's chat starts on.

Run: .venv/bin/python -m pytest -q tests/studio/test_lineage.py
Adapters are small PEFT folders written here (no model is loaded); the store is SQLite in a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.registry import BASE_NAME, EMBEDDED_NAME, EMBEDDED_REPO
from workbench.store import Store
from workbench.studio.lineage import BASE, PREVIOUS, STARTED_FROM, compare_parent, parent_of
from workbench.studio.modelcard import check_card
from workbench.studio.promote import default_checkpoint, promote, read_default

ROOT = Path(__file__).resolve().parents[2]
SAME = GenerationSettings(temperature=0, seed=0)
META = {
    "method": "dpo",
    "base_model": EMBEDDED_NAME,
    "hyperparameters": {"learning_rate": 5e-4, "lora_r": 8, "beta": 0.1, "data": "/secret/path.jsonl"},
    "datasets": {"train": {"file": "/data/pairs.jsonl", "kept": 96, "records": 100, "sha256": "ab" * 32}},
    "votes": {"raters": "humans", "pairs": 96},
    "train_loss": 0.41,
    "val_loss": 0.52,
}


def adapter(root: Path, name: str, base: str = EMBEDDED_NAME, **meta) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "base_model_name_or_path": base, "r": 4}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    save_file({"lora_A": np.zeros((4, 8), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "workbench.json").write_text(json.dumps({**META, **meta}))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Two runs: sft (from the base, checkpoints 10 and 20) and dpo (trained from the adapter sft)."""
    s = Settings(home=tmp_path)
    for name in ("sft", "sft/checkpoint-10", "sft/checkpoint-20"):
        adapter(s.adapters_dir, name, method="sft", init_adapter=None)
    for name in ("dpo/checkpoint-5", "dpo"):
        adapter(s.adapters_dir, name, init_adapter="sft")
    return s


def test_lineage_of_checkpoints_and_of_a_run_trained_from_another_adapter(settings):
    later = parent_of(settings, "sft/checkpoint-20")
    assert (later.parent, later.parent_store, later.relation) == ("sft/checkpoint-10", "sft/checkpoint-10", PREVIOUS)
    first = parent_of(settings, "sft/checkpoint-10")
    assert (first.parent, first.parent_store, first.relation) == (BASE_NAME, EMBEDDED_NAME, BASE)
    assert parent_of(settings, "sft").parent == BASE_NAME  # the run's adapter against what the run started from
    started = parent_of(settings, "dpo/checkpoint-5")
    assert (started.parent, started.relation) == ("sft", STARTED_FROM)
    assert parent_of(settings, "dpo").parent == "sft"
    with pytest.raises(WorkbenchError, match="base model has no parent"):
        parent_of(settings, BASE_NAME)
    with pytest.raises(WorkbenchError, match="no adapter called"):
        parent_of(settings, "nope")


GEMMA = "gemma-3-270m-q4_k_m"  # a second served family: a .gguf file that is never loaded here


@pytest.fixture
def families(tmp_path) -> Settings:
    """The main family's run sft, and Gemma's: g-sft (from its base, checkpoints 10 and 20) and g-dpo (trained from
    the adapter g-sft; checkpoint 5), recorded as trained on Gemma as training records them."""
    (tmp_path / f"{GEMMA}.gguf").write_bytes(b"GGUF")
    s = Settings(home=tmp_path, model=f"{EMBEDDED_NAME},{tmp_path / f'{GEMMA}.gguf'}")
    adapter(s.adapters_dir, "sft", method="sft", init_adapter=None)
    for name in ("g-sft", "g-sft/checkpoint-10", "g-sft/checkpoint-20"):
        adapter(s.adapters_dir, name, GEMMA, method="sft", init_adapter=None, base_model=GEMMA)
    for name in ("g-dpo/checkpoint-5", "g-dpo"):  # what it started from recorded only among its hyperparameters
        hyper = {**META["hyperparameters"], "init_adapter": "g-sft"}
        adapter(s.adapters_dir, name, GEMMA, hyperparameters=hyper, base_model=GEMMA)
    return s


def test_another_familys_checkpoints_have_that_familys_parents_and_store_names(families):
    from workbench.generation.router import choices, store_name
    from workbench.studio import arena_send
    from workbench.studio.lineage import children
    from workbench.ui.context import AppContext
    from workbench.ui.verdict import _names

    every = [
        "sft",
        *(
            f"{GEMMA}/{n}"
            for n in ("g-dpo", "g-dpo/checkpoint-5", "g-sft", "g-sft/checkpoint-10", "g-sft/checkpoint-20")
        ),
    ]
    assert children(families) == _names(AppContext(families)) == every  # both pickers: as the chat names them
    assert children(families, choices(families)) == every and {BASE_NAME, GEMMA} <= set(choices(families))
    expected = {  # the checkpoint: its parent and how they are related
        f"{GEMMA}/g-sft/checkpoint-20": (f"{GEMMA}/g-sft/checkpoint-10", PREVIOUS),
        f"{GEMMA}/g-sft/checkpoint-10": (GEMMA, BASE),
        f"{GEMMA}/g-sft": (GEMMA, BASE),
        f"{GEMMA}/g-dpo/checkpoint-5": (f"{GEMMA}/g-sft", STARTED_FROM),
        f"{GEMMA}/g-dpo": (f"{GEMMA}/g-sft", STARTED_FROM),
        "sft": (BASE_NAME, BASE),
    }
    for checkpoint, (parent, relation) in expected.items():
        lineage = parent_of(families, checkpoint)
        assert (lineage.child, lineage.parent, lineage.relation) == (checkpoint, parent, relation)
        # the names the chat and the Arena store them under
        assert lineage.child == store_name(families, checkpoint)
        assert lineage.parent_store == store_name(families, parent)
    assert parent_of(families, "sft").parent_store == EMBEDDED_NAME
    assert parent_of(families, f"{GEMMA}/g-sft").parent_store == GEMMA
    # "Send to the Arena" pairs a checkpoint with what its run started from, in its family
    assert arena_send.parent_of(families, f"{GEMMA}/g-dpo") == f"{GEMMA}/g-sft"
    assert arena_send.parent_of(families, f"{GEMMA}/g-dpo/checkpoint-5") == f"{GEMMA}/g-sft"
    assert arena_send.parent_of(families, f"{GEMMA}/g-sft/checkpoint-20") == GEMMA  # not its previous save
    assert arena_send.parent_of(families, "sft") == BASE_NAME
    with pytest.raises(WorkbenchError, match="base model has no parent"):
        parent_of(families, GEMMA)
    with pytest.raises(WorkbenchError, match=f"trained for base model '{GEMMA}'"):
        parent_of(families, "g-sft")  # Gemma's adapter is not the main family's
    with pytest.raises(WorkbenchError, match="trained for base model"):
        arena_send.parent_of(families, f"{GEMMA}/sft")  # nor the main family's adapter Gemma's
    with pytest.raises(WorkbenchError, match="remote model"):
        parent_of(families, "remote:gpt/run")


def test_another_familys_verdict_reads_what_the_arena_stored_and_promotes_by_that_name(families):
    from workbench.generation.router import store_name

    child, parent = f"{GEMMA}/g-dpo", f"{GEMMA}/g-sft"
    with Store(families.db_url) as store:
        seed_votes(store, store_name(families, child), store_name(families, parent), 26, 4)
        seed_votes(store, store_name(families, f"{GEMMA}/g-sft/checkpoint-10"), store_name(families, GEMMA), 3, 2)
        report = compare_parent(families, store, child)
        first = compare_parent(families, store, f"{GEMMA}/g-sft/checkpoint-10")
        assert (report.verdict.outcome, report.verdict.arena.votes_between) == ("better", 30)
        assert report.as_dict()["parent"] == parent and report.judges["judge:smol"]["agreement_with_ties"] == 1.0
        assert (first.lineage.parent_store, first.verdict.arena.votes_between) == (GEMMA, 5)
        done = promote(families, store, child)
    assert read_default(families)["checkpoint"] == child and default_checkpoint(families) == child
    assert f"**Better**: `{child}` against its parent `{parent}`" in done.card.read_text()


def seed_votes(store: Store, child: str, parent: str, child_wins: int, parent_wins: int) -> None:
    """One prompt per vote, both checkpoints answering it, a person voting (and a judge agreeing on each)."""
    for i in range(child_wins + parent_wins):
        a = store.add_generation(child, f"Question {i}?", f"{child} answers {i}.", SAME)
        b = store.add_generation(parent, f"Question {i}?", f"{parent} answers {i}.", SAME)
        winner = "a" if i < child_wins else "b"
        store.add_vote(a, b, winner, rater="alice")
        store.add_vote(a, b, winner, rater="judge:smol")


def seed_chrf(store: Store, child: str, parent: str) -> None:
    """chrF on 12 items: the child repeats the references, the parent answers beside the point."""
    from workbench.evaluation.metrics.overlap import corpus_scores

    refs = [f"The capital of country number {i} is city number {i}." for i in range(12)]
    for name, outputs in ((child, refs), (parent, [f"I do not know about {i}." for i in range(12)])):
        [chrf] = corpus_scores(outputs, [refs], ["chrf"])
        rid = store.add_eval_result("capitals", name, "chrf", chrf.score, dataset_hash="d1")
        rows = [
            {"prompt": f"Capital {i}?", "hypothesis": h, "references": [r]}
            for i, (h, r) in enumerate(zip(outputs, refs, strict=True))
        ]
        store.add_eval_examples(rid, rows)
    for name, nll in ((child, 1.0), (parent, 1.5)):  # per item: its negative log-likelihood over 10 tokens
        ppl = float(np.exp(nll + 0.1))  # the items' mean is nll + 0.1 per token
        rid = store.add_eval_result("capitals", name, "response_perplexity", ppl, dataset_hash="d1")
        rows = [
            {
                "prompt": f"Capital {i}?",
                "references": [refs[i]],
                "total_nll": 10 * (nll + 0.1 * (i % 3)),
                "predicted_tokens": 10,
            }
            for i in range(12)
        ]
        store.add_eval_examples(rid, rows)
    store.add_eval_result("shakespeare", child, "perplexity", 30.0, dataset_hash="d2")
    store.add_eval_result("shakespeare", parent, "perplexity", 31.0, dataset_hash="d2")


def test_a_child_people_prefer_is_better_with_every_piece_of_evidence(settings):
    with Store(settings.db_url) as store:
        seed_votes(store, "dpo", "sft", 26, 4)
        seed_chrf(store, "dpo", "sft")
        report = compare_parent(settings, store, "dpo")
    verdict = report.verdict
    assert verdict.outcome == "better" and verdict.decided_by == "arena"
    assert (verdict.arena.wins, verdict.arena.losses, verdict.arena.votes_between) == (26, 4, 30)
    signals = {s.name: s for s in verdict.signals}
    chrf = signals["chrF on capitals"]
    assert chrf.counted and 0 < chrf.interval(0.95)[0] < chrf.delta < chrf.interval(0.95)[1]
    assert "paired bootstrap over 12 items" in chrf.note
    response = signals["response perplexity on capitals"]  # lower is better: a lower child is its gain
    assert response.counted and response.interval(0.95)[0] < response.delta < response.interval(0.95)[1] < 0
    assert response.direction(0.95) == 1
    ppl = signals["perplexity on shakespeare"]
    assert not ppl.counted and ppl.delta == -1.0 and "no per-item scores" in ppl.note
    assert not signals["like rate"].counted
    judge = signals["judge:smol's win share"]
    assert judge.counted and judge.child == pytest.approx(26 / 30)
    assert report.judges["judge:smol"]["agreement_with_ties"] == 1.0  # it agreed with alice on all 30 pairs
    data = report.as_dict()
    assert data["outcome"] == "better" and data["relation"] == STARTED_FROM and "Bonferroni" in data["rule"]
    json.dumps(data)  # JSON-ready, NaN-free


def test_promote_is_refused_when_worse_and_allowed_with_force(settings):
    assert default_checkpoint(settings) == BASE_NAME
    with Store(settings.db_url) as store:
        seed_votes(store, "dpo", "sft", 4, 26)
        with pytest.raises(WorkbenchError, match=r"dpo is worse than its parent sft .* force it") as refused:
            promote(settings, store, "dpo")
        assert str(refused.value).count(". ") == 0  # one sentence
        assert default_checkpoint(settings) == BASE_NAME and not (settings.adapters_dir / "dpo" / "README.md").exists()
        done = promote(settings, store, "dpo", force=True)
    assert done.forced and default_checkpoint(settings) == "dpo"
    assert read_default(settings)["verdict"] == "worse" and read_default(settings)["forced"] is True
    text = done.card.read_text()
    assert "**Worse**: `dpo` against its parent `sft`" in text and "Bonferroni" in text and "pairs.jsonl" in text
    meta = check_card(done.card)
    assert meta["base_model"] == EMBEDDED_REPO and meta["library_name"] == "peft" and meta["license"] == "apache-2.0"
    assert "dpo" in meta["tags"] and "/secret/path.jsonl" not in text
    with Store(settings.db_url) as store:
        promote(settings, store, BASE_NAME)
    assert default_checkpoint(settings) == BASE_NAME


def test_the_model_card_carries_the_metrics_in_its_model_index(settings):
    from huggingface_hub import ModelCard

    with Store(settings.db_url) as store:
        seed_chrf(store, "sft/checkpoint-20", "sft/checkpoint-10")
        done = promote(settings, store, "sft/checkpoint-20", license="mit")
    assert done.report.verdict.outcome == "better" and done.report.verdict.decided_by == "secondary"
    card = ModelCard.load(done.card)
    results = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("capitals", "chrf")] == pytest.approx(100.0) and results[("shakespeare", "perplexity")] == 30.0
    assert len(results) == 3  # and the response perplexity
    assert card.data.license == "mit" and card.data.model_name == "sft-checkpoint-20"
    assert default_checkpoint(settings) == "sft/checkpoint-20"


def test_a_stale_or_broken_default_falls_back_to_the_base(settings):
    (settings.adapters_dir / ".default.json").write_text('{"checkpoint": "gone"}')
    assert default_checkpoint(settings) == BASE_NAME
    (settings.adapters_dir / ".default.json").write_text("{not json")
    assert default_checkpoint(settings) == BASE_NAME
    assert "gone" not in [a.name for a in __import__("workbench.registry").registry.list_adapters(settings)]


def test_a_new_visitors_chat_starts_on_the_promoted_checkpoint(settings):
    from workbench.ui.arena import Arena
    from workbench.ui.chat import _checkpoint_update
    from workbench.ui.context import AppContext

    ctx = AppContext(settings)
    who = ctx.visitor(None)
    with Store(settings.db_url) as store:
        promote(settings, store, "sft/checkpoint-10", force=True)
    update, _, known = _checkpoint_update(ctx, who, BASE_NAME, [])
    assert update["value"] == "sft/checkpoint-10" and "sft/checkpoint-10" in known
    # a visitor who already chose keeps their choice when the list changes
    again, _, _ = _checkpoint_update(ctx, who, BASE_NAME, [BASE_NAME])
    assert again["value"] == BASE_NAME
    # the Arena's settings pairs (one checkpoint, two settings) are made with it; checkpoint pairs with all
    arena = Arena(ctx)
    assert arena.contestants(None, "settings") == ["sft/checkpoint-10"]
    assert len(arena.contestants(None, "checkpoint")) == len(ctx.checkpoint_choices()) > 2


def test_compare_parent_command_prints_one_json_object(settings):
    with Store(settings.db_url) as store:
        seed_votes(store, "sft/checkpoint-20", "sft/checkpoint-10", 3, 2)
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "WORKBENCH_HOME": str(settings.home),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "compare-parent", "sft/checkpoint-20", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["outcome"] == "not yet known" and data["parent"] == "sft/checkpoint-10"
    assert data["arena"]["votes_between"] == 5 and "5 of the 10 votes" in data["reason"]


def test_the_leaderboard_section_compares_and_promotes_only_for_the_admin(tmp_path, settings):
    from dataclasses import replace

    from workbench.access import NEEDS_TOKEN
    from workbench.ui.context import AppContext
    from workbench.ui.verdict import make_compare_fn, make_promote_fn
    from workbench.views.markup import plain_markdown

    public = replace(settings, host="0.0.0.0", admin_token="s3cret")
    with Store(public.db_url) as store:
        seed_votes(store, "dpo", "sft", 4, 26)
    ctx = AppContext(public)
    assert make_compare_fn(ctx)("dpo").startswith("**Worse**: `dpo` against its parent `sft`")
    assert "no parent" in make_compare_fn(ctx)("base")
    promote_fn = make_promote_fn(ctx)
    assert promote_fn("dpo", True, "") == plain_markdown(NEEDS_TOKEN)  # the server checks, whatever the page shows
    assert "is worse than its parent sft" in promote_fn("dpo", False, "s3cret")
    assert default_checkpoint(public) == BASE_NAME
    assert "New visitors now start on dpo \\(forced" in promote_fn("dpo", True, "s3cret")
    assert default_checkpoint(public) == "dpo"


def test_a_public_app_without_a_token_has_no_promote_event(tmp_path):
    from workbench.ui.demo import build_demo

    def api_names(settings: Settings) -> set[str]:
        return {fn.api_name for fn in build_demo(settings).fns.values() if fn.api_name}

    closed = api_names(Settings(home=tmp_path, host="0.0.0.0"))
    assert "compare_parent" in closed and "promote" not in closed
    assert "promote" in api_names(Settings(home=tmp_path, host="0.0.0.0", admin_token="s3cret"))
