"""Evaluation suites: every shipped spec loads, bad specs and data are refused clearly, each suite kind runs
on the real embedded model, results land in the store with their hashes and outputs, and the same run
gives the same numbers. Adapter checkpoints are exercised on a tiny random Llama.

Run: .venv/bin/python -m pytest -q tests/evaluation/test_suites.py
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.evaluation.results import save_results
from workbench.evaluation.runner import evaluate_checkpoint, run_checkpoints, run_suite, run_suites
from workbench.evaluation.suites import EVALS_DIR, KINDS, Suite, find_suite, list_suites, read_examples
from workbench.registry import embedded_base
from workbench.store import Store

TINY_TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 6


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- specs and data -----------------------------------------------------------------------------------------


def test_every_shipped_suite_loads_with_its_data_and_licence():
    suites = list_suites()
    assert {s.kind for s in suites} == set(KINDS)
    assert {"shakespeare", "identity_heldout", "identity_heldout_ppl", "self_instruct_user"} <= {s.name for s in suites}
    for suite in suites:
        assert suite.description and suite.spec.parent == EVALS_DIR
        folder = suite.data.parent
        assert (folder / "SOURCE.md").is_file() or any(folder.glob("LICENSE*")), folder
        if suite.kind == "perplexity":
            assert len(suite.load_text()) > 1000
            continue
        examples = suite.load_examples(0)
        assert examples and all(ex.references and ex.prompt[-1]["role"] == "user" for ex in examples)
        assert len({ex.id for ex in examples}) == len(examples)
        if suite.limit:
            assert len(suite.load_examples()) == suite.limit < len(examples)
        if suite.kind == "generation":
            assert suite.generation.greedy and suite.generation.seed == 0
    assert len(find_suite("self_instruct_user").load_examples(0)) == 252
    assert len(find_suite("identity_heldout_ppl").load_examples()) == 94  # every assistant turn of 50 conversations


def test_the_held_out_chat_suite_is_never_in_the_training_data():
    suite = find_suite("identity_heldout")
    training = EVALS_DIR.parent / "data" / "fastchat_identity" / "train.jsonl"
    trained_ids = {json.loads(line)["id"] for line in training.read_text(encoding="utf-8").splitlines()}
    held_out = {ex.id.split("#")[0] for ex in suite.load_examples(0)}
    assert len(held_out) == 50 and not held_out & trained_ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nkind: bleu\ndata: d.txt\n", "kind must be one of perplexity, response_perplexity, generation"),
        ("name: x\nkind: perplexity\ndata: missing.txt\n", "the data file .*missing.txt does not exist"),
        ("name: Bad Name\nkind: perplexity\ndata: d.txt\n", "the name must be lower-case"),
        ("name: x\nkind: perplexity\ndata: d.txt\nlimit: 5\n", "limit is for example suites"),
        ("name: x\nkind: perplexity\ndata: d.txt\nwindow: 1\n", "window must be a whole number of at least 2"),
        ("name: x\nkind: perplexity\ndata: d.txt\nstride: 600\n", "stride must be empty or between 1 and the window"),
        ("name: x\nkind: generation\ndata: d.txt\n", "a generation suite needs metrics"),
        ("name: x\nkind: generation\ndata: d.txt\nmetrics: [rouge]\n", "not rouge"),
        ("name: x\nkind: response_perplexity\ndata: d.txt\nmetrics: [bleu]\n", "only generation suites list metrics"),
        ("name: x\nkind: generation\ndata: d.txt\nmetrics: [bleu]\ngeneration: {top_p: 2}\n", "Top-p must be"),
        ("name: x\nkind: generation\ndata: d.txt\nmetrics: [bleu]\ngeneration: {seed: null}\n", "a fixed seed"),
        ("name: x\nkind: perplexity\ndata: d.txt\nwindoww: 5\n", "unknown field"),
        ("name: x\nkind: perplexity\n", "the field 'data' is required"),
        ("[1, 2\n", "not valid YAML"),
    ],
)
def test_bad_specs_are_refused_with_one_sentence(tmp_path, text, message):
    (tmp_path / "d.txt").write_text(TINY_TEXT, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=message):
        Suite.from_file(spec(tmp_path, text))


def test_every_data_form_is_read(tmp_path):
    rows = [
        {"id": "c", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"prompt": "Say yes.", "references": ["Yes.", "Yes!"]},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "reference": "Hi"},
        {"instruction": "Translate.", "instances": [{"input": "Bonjour", "output": "Hello"}]},
        {"instruction": "Add.", "input": "2+2", "output": "4"},
        {"input": "Ping", "output": "Pong", "system": "Answer with one word."},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    examples = read_examples(data)
    assert [ex.id for ex in examples] == ["c", "line2", "line3", "line4", "line5", "line6"]
    assert examples[1].references == ["Yes.", "Yes!"] and examples[2].prompt[0]["role"] == "system"
    assert examples[3].prompt == [{"role": "user", "content": "Translate.\n\nBonjour"}]
    assert examples[5].prompt[0] == {"role": "system", "content": "Answer with one word."}
    roles = ["user", "assistant", "user", "assistant"]
    messages = [{"role": r, "content": c} for r, c in zip(roles, "1234", strict=True)]
    data.write_text(json.dumps({"id": "t", "messages": messages}) + "\n", encoding="utf-8")
    assert [ex.references for ex in read_examples(data, "all")] == [["2"], ["4"]]
    assert [ex.id for ex in read_examples(data, "all")] == ["t#1", "t#2"] and len(read_examples(data)) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('{"prompt": "x"}', "line 2: references must be a non-empty list"),
        ('{"messages": [{"role": "user", "content": "only a question"}]}', "line 2: the conversation has no assistant"),
        ('{"text": "x"}', "line 2: expected messages"),
        ('{"id": "a", "prompt": "y", "reference": "z"}', "line 2: the id 'a' is used twice"),
    ],
)
def test_bad_data_lines_are_named(tmp_path, line, message):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "prompt": "x", "reference": "y"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=message):
        read_examples(data)


def test_non_utf8_data_fails_before_anything_is_stored(tmp_path, tiny_engine):
    (tmp_path / "d.txt").write_bytes("Caf\xe9 au lait. ".encode("latin-1") * 20)
    suite = Suite.from_file(spec(tmp_path, "name: latin\nkind: perplexity\ndata: d.txt\nwindow: 64\n"))
    with pytest.raises(WorkbenchError, match="is not UTF-8 text"):
        run_suite(tiny_engine, suite, "base")


# --- runs on a tiny model: adapters, checkpoints of a run, the training hook ---------------------------------


@pytest.fixture(scope="module")
def tiny_settings(tiny_model_dir, tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("eval-home")
    settings = Settings(home=home, model=str(tiny_model_dir))
    for step, seed in ((20, 1), (10, 2)):
        make_lora_adapter(
            tiny_model_dir, settings.adapters_dir / "run" / f"checkpoint-{step}", tiny_model_dir.name, seed
        )
    return settings


@pytest.fixture(scope="module")
def tiny_engine(tiny_settings):
    from workbench.generation.engine import ChatEngine

    return ChatEngine.load(tiny_settings)


@pytest.fixture(scope="module")
def tiny_suites(tmp_path_factory) -> dict[str, Suite]:
    folder = tmp_path_factory.mktemp("tiny-suites")
    (folder / "t.txt").write_text(TINY_TEXT, encoding="utf-8")
    rows = [{"id": f"q{i}", "prompt": f"Question {i}?", "references": [f"Answer number {i}."]} for i in range(3)]
    (folder / "q.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    text = "name: tiny_text\nkind: perplexity\ndata: t.txt\nwindow: 32\nbatch_size: 4\n"
    chat = "name: tiny_chat\nkind: generation\ndata: q.jsonl\nmetrics: [bleu, chrf, response_perplexity]\n"
    chat += "generation: {max_new_tokens: 6}\n"
    return {
        "text": Suite.from_file(spec(folder, text, "text.yaml")),
        "chat": Suite.from_file(spec(folder, chat, "chat.yaml")),
    }


def test_every_checkpoint_of_a_run_is_evaluated_in_step_order(tiny_settings, tiny_engine, tiny_suites):
    names = run_checkpoints(tiny_settings, "run")
    assert names == ["base", "run/checkpoint-10", "run/checkpoint-20"]
    results = run_suites(tiny_engine, [tiny_suites["text"]], names)
    ppl = {r.checkpoint: r for r in results if r.metric == "perplexity"}
    assert [ppl[n].step for n in names] == [None, 10, 20]
    assert len({round(r.value, 6) for r in ppl.values()}) == 3  # each adapter really changes the model
    assert ppl["base"].stored_as == tiny_engine.base.name and ppl["run/checkpoint-10"].stored_as == "run/checkpoint-10"
    adapter = tiny_settings.adapters_dir / "run" / "checkpoint-10" / "adapter_model.safetensors"
    base_hash = ppl["base"].model_hash
    weights = sha256(Path(tiny_engine.base.source) / "model.safetensors")
    assert base_hash == hashlib.sha256(f"model.safetensors {weights}\n".encode()).hexdigest()
    assert ppl["run/checkpoint-10"].details["adapter_sha256"] == sha256(adapter)
    assert ppl["run/checkpoint-10"].model_hash == hashlib.sha256(f"{base_hash}+{sha256(adapter)}".encode()).hexdigest()
    again = run_suite(tiny_engine, tiny_suites["text"], "base")  # after adapters were active: the base again
    assert again[0].value == ppl["base"].value
    with pytest.raises(WorkbenchError, match="has no checkpoints"):
        run_checkpoints(tiny_settings, "nope")


def test_the_training_hook_evaluates_and_stores_one_checkpoint(tiny_settings, tiny_suites):
    results = evaluate_checkpoint(tiny_settings, [tiny_suites["text"], tiny_suites["chat"]], "run/checkpoint-20")
    assert [r.metric for r in results] == ["perplexity", "bits_per_byte", "bleu", "chrf", "response_perplexity"]
    assert all(r.result_id and r.step == 20 for r in results)
    with Store.open(tiny_settings) as store:
        stored = store.eval_results(checkpoint="run/checkpoint-20")
        assert sorted(stored.metric) == sorted(r.metric for r in results)
        assert set(stored.step) == {20}


# --- the shipped suites on the real embedded model -----------------------------------------------------------


@pytest.mark.slow
def test_shipped_suites_run_on_the_embedded_model_and_are_stored_reproducibly(engine, tmp_path):
    def short(name: str) -> Suite:  # the shipped suite with fewer new tokens, to keep the test fast
        suite = find_suite(name)
        return dataclasses.replace(suite, generation=suite.generation.replace(max_new_tokens=16))

    suites = [find_suite("shakespeare"), short("identity_heldout"), find_suite("identity_heldout_ppl")]
    suites.append(short("self_instruct_user"))
    first = run_suites(engine, suites, ["base"], limit=2)
    by = {(r.suite, r.metric): r for r in first}
    assert set(by) == {
        ("shakespeare", "perplexity"),
        ("shakespeare", "bits_per_byte"),
        ("identity_heldout", "bleu"),
        ("identity_heldout", "chrf"),
        ("identity_heldout", "response_perplexity"),
        ("identity_heldout_ppl", "response_perplexity"),
        ("self_instruct_user", "bleu"),
        ("self_instruct_user", "chrf"),
    }
    text = by[("shakespeare", "perplexity")]
    assert 5 < text.value < 500 and text.num_tokens == text.details["predicted_tokens"] > 1500
    assert text.details["window"] == 512 and text.details["dtype"] == "float32" and text.details["bytes"] == 7476
    assert text.model_hash == sha256(embedded_base().source) and text.dataset_hash == sha256(suites[0].data)
    bleu = by[("self_instruct_user", "bleu")]
    assert bleu.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert bleu.settings["temperature"] == 0 and bleu.settings["max_new_tokens"] == 16 and bleu.num_examples == 2
    assert [e["id"] for e in bleu.examples] == ["user_oriented_task_0", "user_oriented_task_1"]
    assert all(e["hypothesis"] and e["new_tokens"] <= 16 for e in bleu.examples)
    same_examples = by[("identity_heldout", "response_perplexity")], by[("identity_heldout_ppl", "response_perplexity")]
    assert same_examples[0].value == pytest.approx(same_examples[1].value, rel=1e-9)

    store = Store(f"sqlite:///{tmp_path / 'evals.db'}")
    save_results(store, first)
    second = run_suites(engine, suites[1:], ["base"], limit=2)  # text perplexity's repeat is checked on the tiny model
    assert [(r.metric, r.value) for r in second] == [(r.metric, r.value) for r in first[2:]]  # same numbers
    save_results(store, second)
    rows = store.eval_results(suite="self_instruct_user", metric="bleu")
    assert len(rows) == 2 and rows.value.nunique() == 1
    row = rows.iloc[0]
    assert row.checkpoint == engine.base.name and row.signature == bleu.signature
    assert row.model_hash == bleu.model_hash and row.dataset_hash == sha256(suites[3].data)
    assert row.settings["seed"] == 0 and row.metadata["backend"] == engine.backend_name
    examples = store.eval_examples(int(row.id))
    assert list(examples.hypothesis) == [e["hypothesis"] for e in bleu.examples]
    generations = store.generations(checkpoint=engine.base.name)
    assert len(generations) == 4  # 2 examples x 2 generation suites, stored once though the suites ran twice
    assert set(examples.metadata.map(lambda m: m["generation_id"])) <= set(generations.id)
