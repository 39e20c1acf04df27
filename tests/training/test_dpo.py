"""Preference training (DPO with LoRA): votes in the store -> pairs -> a real DPO run on the embedded model whose
validation reward accuracy rises; the file form's line-numbered validation; the bad inputs that stop a run before
it trains; resume after kill -9; the merged export; TensorBoard event files.

Run: .venv/bin/python -m pytest -q tests/training/test_dpo.py
The data follows one obvious rule a 135M model learns in a few steps: the preferred reply starts "Happy to help!".
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.fixtures.finetune import ROOT
from tests.fixtures.postgres import create_database
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256
from workbench.registry import CHAT_TEMPLATE_FILE
from workbench.store import Store
from workbench.training import JobConfig, run_job
from workbench.training.preferences import read_preferences
from workbench.training.runlog import read_log
from workbench.training.votes import VoteFilters, vote_pairs, write_vote_pairs

QA = [
    ("What is the capital of France?", "Paris."),
    ("What color is the sky?", "Blue."),
    ("How many legs does a cat have?", "Four."),
    ("What is 2 plus 2?", "Four."),
    ("Name a fruit.", "An apple."),
    ("What do bees make?", "Honey."),
    ("What is frozen water?", "Ice."),
    ("Which planet do we live on?", "Earth."),
    ("What animal barks?", "A dog."),
    ("What is the opposite of hot?", "Cold."),
    ("How many days are in a week?", "Seven."),
    ("What shape is a ball?", "Round."),
    ("What gas do we breathe?", "Oxygen."),
    ("What season follows winter?", "Spring."),
    ("What is the color of grass?", "Green."),
    ("What do you call a baby dog?", "A puppy."),
    ("Which animal says moo?", "A cow."),
    ("What is the capital of Italy?", "Rome."),
    ("What color are bananas?", "Yellow."),
    ("What is the capital of Japan?", "Tokyo."),
]
POLITE = "Happy to help! "
SHORT = ["--max-length", "80", "--batch-size", "2", "--learning-rate", "1e-3", "--warmup", "0", "--beta", "0.1"]


def fill_store(store: Store, qa=QA) -> None:
    """Generations of two checkpoints on the same prompts, and votes: alice and bob prefer the polite one; carol
    adds a tie and a both-bad vote (dropped and counted)."""
    for i, (question, answer) in enumerate(qa):
        polite = store.add_generation("polite", question, POLITE + answer, {"temperature": 0})
        plain = store.add_generation("plain", question, answer, {"temperature": 0})
        store.add_vote(polite, plain, "a", rater="alice")
        store.add_vote(plain, polite, "b", rater="bob", shown_left="b")
        if i < 2:
            store.add_vote(polite, plain, "tie" if i == 0 else "bothbad", rater="carol")


@pytest.fixture(scope="module")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_dir, local_files_only=True)


def test_vote_pairs_group_filter_and_count(tmp_path, wb_settings):
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        fill_store(store, QA[:6])
        lone = store.add_generation("plain", "Odd one?", "", {"temperature": 0})  # an output never stored
        other = store.add_generation("polite", "Odd one?", "Yes.", {"temperature": 0})
        store.add_vote(other, lone, "a", rater="alice")
        records, counts = vote_pairs(store, wb_settings, VoteFilters())
        assert counts == {"votes": 15, "ties": 1, "both_bad": 1, "without_outputs": 1, "pairs": 6}
        assert all(r["chosen"][0]["content"].startswith(POLITE) and r["votes"] == 2 for r in records)
        assert records[0]["prompt"] == [{"role": "user", "content": QA[0][0]}] and "chat_template" not in records[0]
        _, counts = vote_pairs(store, wb_settings, VoteFilters(raters=("alice",), checkpoints=("polite", "plain")))
        assert counts["pairs"] == 6 and counts["filtered_out"] == 8
        _, counts = vote_pairs(store, wb_settings, VoteFilters(checkpoints=("polite", "base")))
        assert counts["pairs"] == 0 and counts["filtered_out"] == 15
        # a fifth vote against the polite reply on one pair: 2 of 3 is below an agreement of 0.7
        polite, plain = (store.find_generation(QA[0][0], c, {"temperature": 0}).id for c in ("polite", "plain"))
        store.add_vote(polite, plain, "b", rater="dave")
        _, counts = vote_pairs(store, wb_settings, VoteFilters(min_agreement=0.7))
        assert counts["pairs"] == 5 and counts["below_agreement"] == 3
        with pytest.raises(WorkbenchError, match="Too few usable pairs: 16 votes -> 0 preference pairs"):
            write_vote_pairs(store, wb_settings, VoteFilters(raters=("carol",)), tmp_path / "p.jsonl")
        assert not (tmp_path / "p.jsonl").exists()
    with Store(f"sqlite:///{tmp_path / 'empty.db'}") as empty, pytest.raises(WorkbenchError, match="no votes yet"):
        write_vote_pairs(empty, wb_settings, VoteFilters(), tmp_path / "p.jsonl")
    with pytest.raises(WorkbenchError, match=r"minimum agreement must be between 0\.5 and 1"):
        VoteFilters(min_agreement=0.3)


def test_each_pair_keeps_the_chat_template_its_outputs_were_generated_with(tmp_path, wb_settings, tokenizer):
    from workbench.generation.loading import declared_template

    adapter = wb_settings.adapters_dir / "taught"
    adapter.mkdir(parents=True, exist_ok=True)
    template = declared_template("chatml")
    (adapter / CHAT_TEMPLATE_FILE).write_text(template, encoding="utf-8")
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        for question, answer in QA[:4]:
            a = store.add_generation("taught", question, POLITE + answer, None)
            b = store.add_generation("taught", question, answer, None)
            store.add_vote(a, b, "a", rater="alice")
        path = tmp_path / "pairs.jsonl"
        assert write_vote_pairs(store, wb_settings, VoteFilters(), path)["pairs"] == 4
    report = read_preferences(path, tokenizer, max_length=128)
    assert report.kept == 4 and report.shape == "preferences"
    pair = report.examples[0]
    # the declared ChatML, not SmolLM2's own template (which adds its default system prompt)
    assert pair.prompt == f"<|im_start|>user\n{QA[0][0]}<|im_end|>\n<|im_start|>assistant\n"
    assert pair.chosen == POLITE + QA[0][1] + "<|im_end|>" and pair.rejected == QA[0][1] + "<|im_end|>"


def test_the_file_form_validates_with_line_numbers(tmp_path, tokenizer):
    good = {"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"prompt": "Hi?", "chosen": "Hello!"}),
        json.dumps({"prompt": "Hi?", "chosen": "Same.", "rejected": "Same."}),
        json.dumps(
            {
                "chosen": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "Yes."}],
                "rejected": [{"role": "user", "content": "B?"}, {"role": "assistant", "content": "No."}],
            }
        ),
        json.dumps({"prompt": [{"role": "user", "content": "Hi?"}], "chosen": 3, "rejected": "x"}),
        json.dumps({"prompt": "Long?", "chosen": "word " * 200, "rejected": "short"}),
        json.dumps(
            {
                "chosen": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "Yes."}],
                "rejected": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "No."}],
            }
        ),
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = read_preferences(path, tokenizer, max_length=128)
    assert [e.line for e in report.examples] == [1, 8]
    assert [(p.line, p.kind) for p in report.problems] == [
        (2, "bad-json"),
        (3, "missing-field"),
        (4, "same-replies"),
        (5, "different-prompts"),
        (6, "wrong-type"),
        (7, "too-long"),
    ]
    assert "line 5: the chosen and rejected replies answer different prompts" in report.summary()
    assert report.headline().startswith("pairs.jsonl: preferences shape (JSONL), 8 records, 2 kept, 6 dropped")
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(
        'prompt,chosen,rejected\nHi?,Hello!,Go away.\nHey?,"",x\n"[{""role"": ""user"", ""content"": ""Yo""}]",A,B\n'
    )
    report = read_preferences(csv_path, tokenizer, max_length=128)
    assert [e.line for e in report.examples] == [2, 4] and [(p.line, p.kind) for p in report.problems] == [
        (3, "empty-content")
    ]
    json_path = tmp_path / "pairs.json"
    json_path.write_text(json.dumps([good, {"prompt": "Hi?"}], indent=1))
    assert [(p.line, p.kind) for p in read_preferences(json_path, tokenizer).problems] == [(7, "missing-field")]


def test_bad_input_stops_before_training(tmp_path, wb_settings, tokenizer):
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"prompt": q, "chosen": POLITE + a, "rejected": a}) + "\n" for q, a in QA[:3]))
    quiet = {"progress": False, "echo": lambda _: None, "store": False}
    with pytest.raises(WorkbenchError, match=r"few\.jsonl has 3 usable training pairs; preference training needs at"):
        run_job(JobConfig(run="few", data=str(few), method="dpo"), wb_settings, **quiet)
    assert not (wb_settings.adapters_dir / "few").exists()
    with pytest.raises(WorkbenchError, match="no adapter called 'nope'"):
        run_job(JobConfig(run="x", data=str(few), method="dpo", init_adapter="nope"), wb_settings, **quiet)
    with pytest.raises(WorkbenchError, match="dpo method"):
        JobConfig(run="x", data=str(few), votes={"filters": {}})
    with pytest.raises(WorkbenchError, match="DPO loss must be one of"):
        JobConfig(run="x", data=str(few), method="dpo", loss_type="bogus")
    with pytest.raises(WorkbenchError, match="Report to must be one of none, tensorboard"):
        JobConfig(run="x", data=str(few), report_to="neptune")


def test_an_init_adapter_of_another_base_is_refused(tiny_settings, wb_settings, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "chosen": POLITE + a, "rejected": a}) + "\n" for q, a in QA))
    quiet = {"progress": False, "echo": lambda _: None, "store": False}
    # An adapter of the tiny model, then a DPO run on the embedded model that tries to start from it.
    sft = JobConfig(run="tiny-sft", data=str(data), method="dpo", max_steps=1, val_fraction=0, max_length=96)
    run_job(sft, tiny_settings, **quiet)
    embedded = dataclasses.replace(wb_settings, adapters_dir=tiny_settings.adapters_dir)
    with pytest.raises(WorkbenchError, match="trained for base model"):
        run_job(JobConfig(run="on-top", data=str(data), method="dpo", init_adapter="tiny-sft"), embedded, **quiet)
    assert not (tiny_settings.adapters_dir / "on-top").exists()


@pytest.fixture(scope="module")
def dpo_run(wb_settings, postgres_server, tmp_path_factory):
    """A real DPO run of the embedded model, from votes in a PostgreSQL store, through the CLI."""
    url = create_database(postgres_server, "wb_dpo_votes")
    with Store(url) as store:
        fill_store(store)
    env = {"WORKBENCH_HOME": str(wb_settings.home), "WORKBENCH_MODELS_DIR": str(wb_settings.models_dir)}
    env |= {"WORKBENCH_ADAPTERS_DIR": str(wb_settings.adapters_dir), "WORKBENCH_DB_URL": url}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        out = tmp_path_factory.mktemp("dpo") / "summary.json"
        args = ["train", "--name", "dpo-votes", "--from-votes", "--vote-rater", "alice", "--vote-rater", "bob"]
        args += [*SHORT, "--max-steps", "4", "--eval-steps", "2", "--save-steps", "2", "--val-fraction", "0.2"]
        args += ["--quiet", "--json"]
        import contextlib
        import io

        buffer = io.StringIO()
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with contextlib.redirect_stdout(buffer):
                assert main(args) == 0
        finally:  # the command stops a run on these signals; pytest's own Ctrl-C comes back afterwards
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        out.write_text(buffer.getvalue())
    return json.loads(buffer.getvalue()), url


@pytest.mark.slow
def test_dpo_from_votes_raises_the_validation_reward_accuracy(dpo_run, wb_settings):
    summary, _ = dpo_run
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["checkpoints"] == ["dpo-votes/checkpoint-2", "dpo-votes/checkpoint-4"]
    records = read_log(wb_settings.adapters_dir / "dpo-votes" / "train_log.jsonl")
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 4]
    # at the start the adapter is zero: both replies get reward 0, so no pair is won
    assert evals[0]["val_reward_accuracy"] == 0 and evals[0]["val_reward_margin"] == pytest.approx(0, abs=1e-6)
    assert evals[-1]["val_reward_accuracy"] >= 0.75 > evals[0]["val_reward_accuracy"]
    assert evals[-1]["val_reward_margin"] > 0 and evals[-1]["val_loss"] < evals[0]["val_loss"]
    logs = [r for r in records if r["event"] == "log"]
    assert all(r["reward_accuracy"] is not None and r["reward_margin"] is not None for r in logs)

    meta = json.loads((wb_settings.adapters_dir / "dpo-votes" / "checkpoint-4" / "workbench.json").read_text())
    assert meta["method"] == "dpo" and meta["hyperparameters"]["beta"] == 0.1
    votes = meta["votes"]
    assert votes["filters"]["raters"] == ["alice", "bob"] and votes["store"] == "postgresql"
    assert votes["counts"] == {"votes": 42, "filtered_out": 2, "pairs": 20}
    pairs = wb_settings.var_dir / "preferences" / "dpo-votes.jsonl"
    assert meta["datasets"]["train"]["sha256"] == file_sha256(pairs) and meta["examples"]["validation"] == 4
    from workbench.training.jobs import train_command

    command = train_command(JobConfig.from_dict(meta["hyperparameters"]))
    assert "--from-votes" in command and "--data" not in command and command.count("--vote-rater") == 2


def _cli(name: str, data, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workbench", "train", "--name", name, "--method", "dpo", "--data", str(data), *extra]


@pytest.mark.slow
def test_resume_after_kill_9_ends_at_the_same_step(tiny_settings, tiny_env, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "chosen": POLITE + a, "rejected": a}) + "\n" for q, a in QA))
    flags = [*SHORT, "--max-steps", "8", "--save-steps", "2", "--eval-steps", "4", "--quiet", "--no-store"]
    proc = subprocess.Popen(_cli("killed", data, *flags), cwd=ROOT, env=tiny_env, stdout=subprocess.DEVNULL)
    ckpt = tiny_settings.adapters_dir / "killed" / "checkpoint-4"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "the run did not reach its second checkpoint"
    resumed = subprocess.run(
        [sys.executable, "-m", "workbench", "train", "--name", "killed", "--resume", "--quiet", "--json", "--no-store"],
        cwd=ROOT,
        env=tiny_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "finished" and summary["step"] == 8
    assert summary["checkpoints"][-1] == "killed/checkpoint-8"
    steps = [
        r["step"] for r in read_log(tiny_settings.adapters_dir / "killed" / "train_log.jsonl") if r["event"] == "log"
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 8


@pytest.mark.slow
def test_merged_export_generates_what_base_plus_adapter_generates(dpo_run, wb_settings, embedded_dir, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(wb_settings.home))
        mp.setenv("WORKBENCH_MODELS_DIR", str(wb_settings.models_dir))
        mp.setenv("WORKBENCH_ADAPTERS_DIR", str(wb_settings.adapters_dir))
        out = tmp_path / "merged"
        assert main(["export-model", "dpo-votes", "--merged", "--out", str(out), "--json"]) == 0
        written = json.loads(capsys.readouterr().out)
        assert main(["export-model", "dpo-votes/checkpoint-2", "--out", str(tmp_path / "peft")]) == 0
        assert main(["export-model", "dpo-votes", "--merged", "--out", str(out)]) == 2  # not empty: refused
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "workbench.json"} <= set(
        written["files"]
    )
    assert {p.name for p in (tmp_path / "peft").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}

    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of Spain?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    merged = AutoModelForCausalLM.from_pretrained(out)
    stacked = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(embedded_dir), str(wb_settings.adapters_dir / "dpo-votes")
    )
    greedy = {"max_new_tokens": 12, "do_sample": False}
    a = merged.generate(**prompt, **greedy)[0]
    b = stacked.generate(**prompt, **greedy)[0]
    assert tokenizer.decode(a) == tokenizer.decode(b)
    base = AutoModelForCausalLM.from_pretrained(embedded_dir)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert not merged.state_dict()[name].equal(base.state_dict()[name])  # the LoRA update is folded in


@pytest.mark.slow
def test_tensorboard_reads_the_runs_event_files(tiny_settings, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "chosen": POLITE + a, "rejected": a}) + "\n" for q, a in QA))
    config = JobConfig(
        run="tracked",
        data=str(data),
        method="dpo",
        max_steps=2,
        eval_steps=2,
        save_steps=2,
        max_length=96,
        val_fraction=0.2,
        report_to="tensorboard",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
        run_job(config, tiny_settings, progress=False, echo=lambda _: None, store=False)
        folder = tiny_settings.adapters_dir / "tracked" / "tracking" / "tensorboard"
        events = EventAccumulator(str(folder))
        events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/rewards/accuracies", "eval/rewards/accuracies", "eval/loss"} <= scalars
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]


@pytest.mark.slow
def test_send_to_the_arena_pairs_the_new_checkpoint_with_its_parent(dpo_run, engine, wb_settings, tmp_path):
    from workbench.studio.arena_send import parent_of, send_to_arena
    from workbench.studio.compare import store_name
    from workbench.ui.arena import ARENA_SETTINGS

    assert parent_of(wb_settings, "dpo-votes") == "base"
    short = dataclasses.replace(ARENA_SETTINGS, max_new_tokens=16)
    with Store(f"sqlite:///{tmp_path / 'arena.db'}") as store:
        sent = send_to_arena(engine, store, wb_settings, "dpo-votes", short, limit=2)
        assert (sent["parent"], sent["generated"], sent["from_store"]) == ("base", 4, 0)
        item = store.next_pair_for("zoe")
        names = {item.a.checkpoint, item.b.checkpoint}
        assert names == {"dpo-votes", store_name(wb_settings, "base")}
        assert send_to_arena(engine, store, wb_settings, "dpo-votes", short, limit=2)["from_store"] == 4
        with pytest.raises(WorkbenchError, match="no adapter called 'nope'"):
            send_to_arena(engine, store, wb_settings, "nope", short)
