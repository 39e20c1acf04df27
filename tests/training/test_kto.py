"""KTO on likes and dislikes (with LoRA): the chat's reactions in the store -> liked/disliked replies under the
filters -> a real KTO run on the embedded model whose validation loss falls and which prefers the liked kind of
reply on held-out prompts; the file form's line-numbered validation; the balance weights; too little feedback.

Run: .venv/bin/python -m pytest -q tests/training/test_kto.py
The data follows the DPO tests' rule (tests/training/test_dpo.py): a liked reply starts "Happy to help!", a
disliked one is the bare answer.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal

import pytest

from tests.training.test_dpo import POLITE, QA, tokenizer  # noqa: F401 (a fixture)
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluation.fingerprints import file_sha256
from workbench.store import Store
from workbench.training import JobConfig
from workbench.training.likes import LikeFilters, like_records, write_like_records
from workbench.training.runlog import read_log
from workbench.training.unpaired import kto_weights, read_labelled, require_labelled

DAY = 86400.0
START = 1_796_000_000.0  # 2026-11-30 (UTC): the reactions' dates
TRAINED, HELD_OUT = QA[:12], QA[12:]


def react(store: Store, qa=TRAINED, rater: str = "alice", when: float = START) -> None:
    """A chat reply of each kind per question, as visitors leave them: the polite one liked, the bare one disliked."""
    for question, answer in qa:
        polite = store.add_generation("base", question, POLITE + answer, {"temperature": 0.7}, origin="chat")
        plain = store.add_generation("base", question, answer, {"temperature": 0.7, "seed": 1}, origin="chat")
        store.add_feedback("like", polite, rater=rater, created_at=when)
        store.add_feedback("dislike", plain, rater=rater, created_at=when)


def test_like_records_filter_and_count(tmp_path, wb_settings):
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        react(store, QA[:3])
        react(store, QA[3:5], rater="judge:gpt", when=START + 3 * DAY)
        other = store.add_generation("other", "Odd one?", "Yes.", None)  # not a chat reply
        store.add_feedback("like", other, rater="bob", created_at=START)
        taken_back = store.add_generation("base", "Why?", "Because.", None, origin="chat")
        store.add_feedback("like", taken_back, rater="bob", created_at=START)
        store.add_feedback("cleared", taken_back, rater="bob", created_at=START + 1)
        records, counts = like_records(store, wb_settings, LikeFilters(origin="chat"))
        assert counts == {"reactions": 11, "filtered_out": 5, "liked": 3, "disliked": 3}
        assert like_records(store, wb_settings, LikeFilters())[1]["liked"] == 4  # any origin by default
        first = records[0]
        assert first["prompt"] == [{"role": "user", "content": QA[0][0]}] and first["label"] is True
        assert first["completion"] == [{"role": "assistant", "content": POLITE + QA[0][1]}]
        _, counts = like_records(store, wb_settings, LikeFilters(rater_kind="judges", since="2026-12-03"))
        assert counts["liked"] == counts["disliked"] == 2
        _, counts = like_records(store, wb_settings, LikeFilters(rater_kind="all", until="2026-11-30", origin="all"))
        assert counts["liked"] == 4 and counts["disliked"] == 3 and counts["filtered_out"] == 4
        _, counts = like_records(store, wb_settings, LikeFilters(checkpoints=("other",), origin="all"))
        assert counts == {"reactions": 11, "filtered_out": 10, "liked": 1}
        with pytest.raises(WorkbenchError, match=r"Too few usable reactions: 11 likes and dislikes -> 1 liked and 0"):
            write_like_records(store, wb_settings, LikeFilters(raters=("bob",), origin="all"), tmp_path / "l.jsonl")
        assert not (tmp_path / "l.jsonl").exists()
    with Store(f"sqlite:///{tmp_path / 'empty.db'}") as empty, pytest.raises(WorkbenchError, match="no likes"):
        write_like_records(empty, wb_settings, LikeFilters(), tmp_path / "l.jsonl")
    with pytest.raises(WorkbenchError, match="The since date must be a date such as 2026-12-01, not 'last week'"):
        LikeFilters(since="last week")
    with pytest.raises(WorkbenchError, match=r"ends \(2026-11-01\) before it starts"):
        LikeFilters(since="2026-12-01", until="2026-11-01")


def test_the_file_form_validates_with_line_numbers(tmp_path, tokenizer):  # noqa: F811
    lines = [
        json.dumps({"prompt": "Hi?", "completion": "Hello!", "label": True}),
        "{not json",
        json.dumps({"prompt": "Hi?", "completion": "Hello!"}),
        json.dumps({"prompt": "Hi?", "completion": "Hello!", "label": "maybe"}),
        json.dumps({"prompt": [{"role": "assistant", "content": "x"}], "completion": "y", "label": False}),
        json.dumps({"prompt": "Hi?", "completion": 3, "label": False}),
        json.dumps({"prompt": "Hi?", "completion": [{"role": "assistant", "content": "Go."}], "label": False}),
        json.dumps({"completion": "Go.", "label": False}),
        json.dumps({"prompt": "Long?", "completion": "word " * 200, "label": True}),
    ]
    path = tmp_path / "likes.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = read_labelled(path, tokenizer, max_length=128)
    assert [(e.line, e.label) for e in report.examples] == [(1, True), (7, False)]
    reasons = {p.line: p.reason for p in report.problems}
    assert reasons[3] == "missing field 'label'" and reasons[4] == "field 'label' must be true or false, not 'maybe'"
    assert reasons[5] == "the prompt's last message must be the user's" and reasons[8] == "missing field 'prompt'"
    assert reasons[6] == "field 'completion' must be text or a list of messages, not int"
    assert sorted(reasons) == [2, 3, 4, 5, 6, 8, 9] and reasons[9].endswith("longer than the maximum of 128")
    assert report.examples[1].completion.startswith("Go.") and report.examples[1].prompt.endswith("assistant\n")
    with pytest.raises(WorkbenchError, match=r"likes\.jsonl has 1 liked and 1 disliked usable training replies; KTO"):
        require_labelled(report)
    csv = tmp_path / "likes.csv"
    csv.write_text(
        'prompt,completion,label\nHi?,Hello!,true\nHi?,Go.,FALSE\n"[{""role"": ""user"", ""content"": ""A?""}]",B,1\n'
    )
    assert [e.label for e in read_labelled(csv, tokenizer).examples] == [True, False, True]


def test_the_weights_even_out_unequal_counts(tmp_path, tokenizer):  # noqa: F811
    path = tmp_path / "likes.jsonl"
    rows = [{"prompt": f"Q{i}?", "completion": f"A{i}.", "label": i < 6} for i in range(8)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    replies = read_labelled(path, tokenizer).examples
    assert kto_weights(replies) == (1.0, 3.0)  # 6 liked x 1 = 2 disliked x 3: TRL's 1:1 end of its 1:1-4:3 range
    assert kto_weights([r for r in replies if r.line > 4]) == (1.0, 1.0)
    assert kto_weights([r for r in replies if r.line in (1, 7, 8)]) == (2.0, 1.0)


def test_bad_kto_jobs_are_refused_in_one_sentence(tmp_path):
    data = tmp_path / "d.jsonl"
    with pytest.raises(WorkbenchError, match="KTO needs a batch size of at least 2, not 1"):
        JobConfig(run="x", data=str(data), method="kto", batch_size=1)
    with pytest.raises(WorkbenchError, match="use the kto method"):
        JobConfig(run="x", data=str(data), method="dpo", likes={"filters": {}})


@pytest.fixture(scope="module")
def kto_run(wb_settings, tmp_path_factory):
    """A real KTO run of the embedded model, from the chat's likes and dislikes in a store, through the CLI."""
    url = f"sqlite:///{tmp_path_factory.mktemp('kto') / 's.db'}"
    with Store(url) as store:
        react(store)
        react(store, QA[:2], rater="judge:gpt")  # an LLM judge's reactions: not people's, so filtered out
    env = {"WORKBENCH_HOME": str(wb_settings.home), "WORKBENCH_MODELS_DIR": str(wb_settings.models_dir)}
    env |= {"WORKBENCH_ADAPTERS_DIR": str(wb_settings.adapters_dir), "WORKBENCH_DB_URL": url}
    args = ["train", "--name", "kto-likes", "--from-likes", "--vote-since", "2026-11-30", "--max-length", "80"]
    args += ["--batch-size", "2", "--learning-rate", "1e-3", "--warmup", "0", "--beta", "0.1", "--max-steps", "4"]
    args += ["--eval-steps", "4", "--save-steps", "2", "--val-fraction", "0.25", "--quiet", "--json"]
    buffer = io.StringIO()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        try:
            with contextlib.redirect_stdout(buffer):
                assert main(args) == 0
        finally:  # the command stops a run on these signals; pytest's own Ctrl-C comes back afterwards
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    return json.loads(buffer.getvalue())


def liked_margin(model, tokenizer, qa) -> float:  # noqa: F811
    """Mean over `qa` of log p(liked reply) - log p(disliked reply), each given its question (reply tokens only)."""
    import torch

    from workbench.training.preferences import render

    margins = []
    for question, answer in qa:
        logps = []
        for reply in (POLITE + answer, answer):
            head, tail = render(tokenizer, [{"role": "user", "content": question}], reply)
            prompt_ids = tokenizer(head, return_tensors="pt")["input_ids"]
            ids = tokenizer(head + tail, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                logits = model(input_ids=ids).logits[0, :-1].float()
            picked = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
            logps.append(picked[prompt_ids.shape[1] - 1 :].sum().item())
        margins.append(logps[0] - logps[1])
    return sum(margins) / len(margins)


@pytest.mark.slow
def test_kto_from_likes_lowers_the_loss_and_prefers_liked_replies(kto_run, wb_settings, tokenizer):  # noqa: F811
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    summary = kto_run
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["checkpoints"] == ["kto-likes/checkpoint-2", "kto-likes/checkpoint-4"]
    assert summary["examples"]["train"] == 18 and summary["examples"]["validation"] == 6
    records = read_log(wb_settings.adapters_dir / "kto-likes" / "train_log.jsonl")
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [0, 4]
    # at the start the adapter is zero: every reply's reward is 0; then the held-out liked replies win
    assert evals[0]["val_reward_margin"] == pytest.approx(0, abs=1e-6)
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] and evals[-1]["val_reward_margin"] > 0
    assert all(r["kl"] is not None for r in records if r["event"] == "log")
    prepare = next(r for r in records if r["event"] == "prepare")
    assert "liked and" in prepare["summary"] and "KTO weighs them" in prepare["summary"]

    meta = json.loads((wb_settings.adapters_dir / "kto-likes" / "checkpoint-4" / "workbench.json").read_text())
    counts = {"reactions": 28, "filtered_out": 4, "liked": 12, "disliked": 12}
    assert meta["method"] == "kto" and meta["likes"]["counts"] == counts
    assert meta["likes"]["filters"]["since"] == "2026-11-30" and meta["likes"]["filters"]["rater_kind"] == "humans"
    replies = wb_settings.var_dir / "feedback" / "kto-likes.jsonl"
    assert meta["datasets"]["train"]["sha256"] == file_sha256(replies)
    from workbench.training.jobs import train_command

    command = train_command(JobConfig.from_dict({**meta["hyperparameters"]}))
    assert "--from-likes" in command and "--data" not in command and "--vote-since" in command

    # held-out questions: the trained adapter puts more probability on the liked kind of reply than its parent
    base = AutoModelForCausalLM.from_pretrained(wb_settings.models_dir / "base" / _embedded_name(), dtype="float32")
    parent = liked_margin(base, tokenizer, HELD_OUT)
    child = liked_margin(
        PeftModel.from_pretrained(base, str(wb_settings.adapters_dir / "kto-likes")), tokenizer, HELD_OUT
    )
    print(f"held-out log p(liked) - log p(disliked): parent {parent:.2f}, child {child:.2f}")
    assert child > parent + 1.0  # nats, averaged over 8 questions none of the reactions were about


def _embedded_name() -> str:
    from workbench.registry import embedded_base

    return embedded_base().cache_name


def test_a_kto_file_with_too_few_dislikes_stops_before_training(tmp_path, wb_settings):
    path = tmp_path / "likes.jsonl"
    rows = [{"prompt": f"Q{i}?", "completion": f"A{i}.", "label": i != 0} for i in range(6)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from workbench.training.prepare import prepare_data

    with pytest.raises(WorkbenchError, match="has 5 liked and 1 disliked usable training replies; KTO needs at least"):
        prepare_data(JobConfig(run="x", data=str(path), method="kto"), wb_settings)


@pytest.mark.parametrize(
    ("extra", "sentence"),
    [
        (["--data", "x.jsonl"], "--from-likes trains KTO on the store's likes: leave out --data"),
        (["--method", "dpo"], "--from-likes trains KTO on the store's likes: leave out --data and other methods"),
        (["--from-votes"], "Train on one of the store's sources, not --from-votes and --from-likes."),
        (["--vote-since", "yesterday"], "The since date must be a date such as 2026-12-01, not 'yesterday'."),
        (["--vote-min-agreement", "0.7"], "--vote-min-agreement only filter votes; leave them out here."),
    ],
)
def test_from_likes_flags_are_checked_in_one_sentence(extra, sentence, tmp_path, capsys):
    import argparse

    from workbench.cli import train as train_cli
    from workbench.config import Settings

    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--name", "x", "--from-likes", *extra])
    settings = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(WorkbenchError) as caught:
        train_cli.job_config(args, settings)
    assert str(caught.value).startswith(sentence)
