"""The LLM judge end to end: the embedded model in process, and llama.cpp's HTTP server as a remote judge.

Run: .venv/bin/python -m pytest -q tests/studio/test_judge.py
A real SQLite store holds three pairs people voted on. The embedded model (the session's engine, on llama.cpp)
judges them with the built-in prompt: replies cut before their verdict are reported and never stored, a run with a
limit stores what it judged, the next run (the CLI, with --json and its progress bar) skips those and judges the
rest, and one more run judges nothing; the votes are the judge's, in both orders, under "judge:<model>", left out
of the leaderboard by default. The remote judge counts the tokens the server reports. The agreement numbers
themselves are checked against hand-computed values in tests/ratings/test_agreement.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from workbench.cli import main
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router
from workbench.generation.settings import GenerationSettings
from workbench.store import Store
from workbench.studio.judge import JudgePrompt, combined, judge, read_prompt_file

SAME = GenerationSettings(temperature=0, seed=0)
PAIRS = [
    ("What is the capital of France?", "The capital of France is Paris.", "The capital of France is Berlin."),
    ("What is 2 + 2?", "2 + 2 = 4.", "2 + 2 = 5."),
    ("Say hello in Spanish.", "Hola!", "Bonjour!"),
]
FIELDS = {"pairs", "agreement_with_ties", "agreement_without_ties", "kappa", "position_consistency"}
FIELDS |= {"human_human_with_ties", "human_human_without_ties"}


def seed_pairs(store: Store) -> list[tuple[int, int]]:
    """Three pairs with two people's votes each (they disagree on the last one)."""
    ids = []
    for question, good, bad in PAIRS:
        a = store.add_generation("good", question, good, SAME)
        b = store.add_generation("bad", question, bad, SAME)
        store.add_vote(a, b, "a", rater="alice")
        store.add_vote(a, b, "tie" if "Spanish" in question else "a", rater="bob")
        ids.append((a, b))
    return ids


def judge_votes(store: Store, judge: str):
    verdicts = store.pair_verdicts()
    return verdicts[verdicts["rater"] == judge]


@pytest.fixture
def env(tmp_path, models_dir, monkeypatch):
    """Settings and WORKBENCH_* variables for a store and a registry.yaml of its own, sharing the session's
    converted embedded model."""
    own = tmp_path / "models"
    own.mkdir()
    (own / "base").symlink_to(models_dir / "base")
    settings = Settings(
        home=tmp_path, models_dir=own, adapters_dir=tmp_path / "adapters", db_url=f"sqlite:///{tmp_path / 'judge.db'}"
    )
    for key, value in {
        "WORKBENCH_HOME": tmp_path,
        "WORKBENCH_MODELS_DIR": settings.models_dir,
        "WORKBENCH_ADAPTERS_DIR": settings.adapters_dir,
        "WORKBENCH_DB_URL": settings.db_url,
    }.items():
        monkeypatch.setenv(key, str(value))
    return settings


@pytest.mark.slow
def test_the_embedded_model_judges_reports_replies_without_a_verdict_and_resumes(env, engine, monkeypatch, capsys):
    from workbench.generation.engine import ChatEngine

    router = Router(env, main=lambda: engine)
    with Store(env.db_url) as store:
        ids = seed_pairs(store)
        # One token is not enough for "Verdict: A": both replies are reported, and nothing is stored.
        cut = judge(router, store, "base", max_new_tokens=1, limit=1)
        rater = cut.judge
        assert rater == "judge:SmolLM2-135M-Instruct" and cut.candidates == 3 and cut.judged == 0
        assert [(u["generation_a"], u["generation_b"], u["order"]) for u in cut.unparsed] == [
            (*ids[0], "a,b"),
            (*ids[0], "b,a"),
        ]
        assert cut.tokens["completion"] == 2 and cut.tokens["prompt"] > 2 * 100 and not cut.remote
        assert judge_votes(store, rater).empty
        # Enough tokens, one pair: stored, with its verdicts in both orders.
        seen = []
        first = judge(router, store, "base", max_new_tokens=12, limit=1, progress=lambda d, t: seen.append((d, t)))
        assert (first.judged, first.skipped, first.candidates, first.unparsed, first.failed) == (1, 0, 3, [], [])
        assert seen == [(1, 1)]
        votes = judge_votes(store, rater)
        assert [(r.generation_a_id, r.generation_b_id) for r in votes.itertuples()] == ids[:1]
        assert all(r.winner == combined(r.first, r.second) for r in votes.itertuples())

    # The CLI carries on: the first pair is skipped, the other two judged; one JSON object on stdout.
    monkeypatch.setattr(ChatEngine, "load", classmethod(lambda cls, *args, **kwargs: engine))
    assert main(["judge", "--judge", "base", "--max-new-tokens", "12", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert set(out) >= FIELDS and "judging" in captured.err  # the progress bar
    assert (out["run"]["skipped"], out["run"]["judged"], out["run"]["candidates"]) == (1, 2, 3)
    assert out["judge"] == rater and out["verdicts"] == 3 and out["pairs"] == 3 and out["comparisons"] == 6
    with Store(env.db_url) as store:
        votes = judge_votes(store, rater)
        again = judge(router, store, "base", max_new_tokens=12)
    assert len(votes) == 3 and (again.judged, again.skipped, again.tokens["prompt"]) == (0, 3, 0)
    # The agreement again without judging, as a table; the leaderboard leaves the judge out unless asked.
    assert main(["judge", "--judge", "base", "--agreement-only"]) == 0
    text = capsys.readouterr().out
    assert f"{rater}: 3 verdicts; position consistency" in text and "agreement without ties" in text
    assert main(["leaderboard", "--json", "--bootstrap", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["battles"] == 6
    assert main(["leaderboard", "--json", "--bootstrap", "0", "--raters", "judges"]) == 0
    assert json.loads(capsys.readouterr().out)["battles"] == 3


def test_prompt_files_and_bad_requests_get_one_sentence(env, tmp_path, capsys):
    fastchat = tmp_path / "pair.json"
    fastchat.write_text(
        json.dumps(
            {
                "name": "pair-v2",
                "system_prompt": "Be fair. Output [[A]], [[B]] or [[C]].",
                "prompt_template": "[Q]\n{question}\n[A]\n{answer_a}\n[B]\n{answer_b}\n{not a placeholder}",
            }
        )
    )
    prompt = read_prompt_file(fastchat)
    messages = prompt.messages("Q?", "one {answer_b}", "two")
    assert messages[0] == {"role": "system", "content": "Be fair. Output [[A]], [[B]] or [[C]]."}
    assert messages[1]["content"] == "[Q]\nQ?\n[A]\none {answer_b}\n[B]\ntwo\n{not a placeholder}"
    text = tmp_path / "judge.txt"
    text.write_text("{question} {answer_a} {answer_b}")
    assert read_prompt_file(text) == JudgePrompt("{question} {answer_a} {answer_b}", None, str(text))
    with pytest.raises(WorkbenchError, match=r"\{answer_b\} is missing"):
        JudgePrompt("{question} {answer_a}")
    with Store(env.db_url) as store:
        seed_pairs(store)
    for args, needle in (
        (["--judge", "nope"], "There is no checkpoint 'nope' to judge with; choose one of base"),
        (["--judge", "base", "--prompt-file", str(tmp_path / "missing.txt")], "missing.txt"),
        (["--judge", "base", "--agreement-only", "--limit", "2"], "--agreement-only judges nothing"),
        (["--agreement-only"], "the store has no judge's votes yet"),
        (["--judge", "base", "--limit", "0"], "at least 1 pair"),
    ):
        assert main(["judge", *args]) == 2
        assert needle in capsys.readouterr().err


@pytest.mark.slow
def test_a_remote_judge_through_llama_cpps_http_server_counts_its_tokens(env, llama_server, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_TEST_JUDGE_KEY", llama_server.api_key)
    entry = {"name": "llama", "backend": "openai", "base_url": llama_server.base_url, "model": llama_server.model}
    entry["api_key_env"] = "WORKBENCH_TEST_JUDGE_KEY"
    (env.models_dir / "registry.yaml").write_text(yaml.safe_dump({"models": [entry]}), encoding="utf-8")
    with Store(env.db_url) as store:
        ids = seed_pairs(store)
    args = ["judge", "--judge", "remote:llama", "--max-new-tokens", "12", "--limit", "2", "--quiet", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    run = out["run"]
    assert run["judge"] == "judge:llama" and run["remote"] and run["candidates"] == 3
    assert run["tokens"]["prompt"] > 4 * 100 and 4 <= run["tokens"]["completion"] <= 4 * 12
    assert run["tokens"]["total"] == run["tokens"]["prompt"] + run["tokens"]["completion"]
    with Store(env.db_url) as store:
        votes = judge_votes(store, "judge:llama")
    assert [(r.generation_a_id, r.generation_b_id) for r in votes.itertuples()] == ids[: run["judged"]]
    assert run["judged"] == 2 and out["verdicts"] == 2  # the same model as in process: it gives "Verdict: A"
