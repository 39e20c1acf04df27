"""`python -m workbench leaderboard`, `export` and `import` as a user runs them (subprocesses, a real store).

Run: .venv/bin/python -m pytest -q tests/ratings/test_leaderboard_cli.py
Covers FastChat battle files, the store's votes (SQLite and PostgreSQL), `--rater` and `--backend` filters (the
JSON output names the backends the standings cover), bad files, exports, imports and the admin token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.cli import main
from workbench.store import Store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    return {**clean, "WORKBENCH_HOME": str(tmp_path / "home")}


def fastchat_battles() -> list[dict]:
    """A small arena in FastChat's clean-battle form: strong > mid > weak, with ties and both-bad votes."""
    record = {
        "question_id": "q",
        "judge": "arena_user_1",
        "conversation_a": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "conversation_b": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}],
        "turn": 1,
        "anony": True,
        "language": "English",
    }
    plan = [("strong", "mid", "model_a", 6), ("mid", "strong", "model_a", 2), ("strong", "mid", "tie", 2)]
    plan += [("mid", "weak", "model_a", 6), ("weak", "mid", "model_a", 2), ("mid", "weak", "tie (bothbad)", 1)]
    plan += [("strong", "weak", "model_a", 7), ("weak", "strong", "model_a", 1)]
    battles, t = [], 1_700_000_000.0
    for a, b, winner, n in plan:
        for _ in range(n):
            battles.append({**record, "model_a": a, "model_b": b, "winner": winner, "tstamp": t})
            t += 1
    return battles


@pytest.mark.slow
def test_leaderboard_ranks_a_fastchat_battle_file(tmp_path, env):
    path = tmp_path / "clean_battle_20240101.json"
    path.write_text(json.dumps(fastchat_battles(), indent=2))  # the JSON array clean_battle_data.py writes
    done = run_cli(["leaderboard", "--battles", str(path), "--bootstrap", "200", "--seed", "1", "--json"], env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["battles"] == 27 and result["bootstrap"] == 200
    models = result["models"]
    assert [m["model"] for m in models] == ["strong", "mid", "weak"]
    assert sum(m["rating"] for m in models) / 3 == pytest.approx(1000, abs=0.05)
    for m in models:
        assert m["lower"] <= m["rating"] <= m["upper"] and m["rank"] >= 1
    strong = models[0]
    assert (strong["battles"], strong["wins"], strong["losses"], strong["ties"]) == (18, 13, 3, 2)
    assert result["position_bias"]["decisive"] == 24
    rule = result["stopping_rule"]  # the same verdict the Leaderboard page shows
    assert [(p["higher"], p["lower"]) for p in rule["pairs"]] == [("strong", "mid"), ("mid", "weak")]
    assert rule["votes"] == 27 and rule["settled"] is False and rule["summary"].startswith("Not settled yet")
    assert all(p["margin"] > 0 and p["separated"] == (p["gap"] > p["margin"]) for p in rule["pairs"])

    # the same file as JSONL, as a table; same seed -> same numbers
    jsonl = tmp_path / "battles.jsonl"
    jsonl.write_text("".join(json.dumps(b) + "\n" for b in fastchat_battles()))
    table = run_cli(["leaderboard", "--battles", str(jsonl), "--bootstrap", "200", "--seed", "1"], env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    first = next(line for line in lines if "strong" in line)
    assert f"{models[0]['rating']:.1f}" in first and "13-3-2" in first
    assert "Left output won" in table.stdout
    assert f"Stopping rule: {rule['summary']}" in table.stdout and "strong > mid" in table.stdout
    narrow = run_cli(["leaderboard", "--battles", str(jsonl), "--half-width", "1000", "--json"], env)
    assert json.loads(narrow.stdout)["stopping_rule"]["settled"] is True  # every interval is within +-1000
    wrong = run_cli(["leaderboard", "--battles", str(jsonl), "--half-width", "-3"], env)
    assert wrong.returncode == 2 and "--half-width must be between 0 and 1000" in wrong.stderr
    assert result["backends"] == ["unknown"] and "backends: unknown" in table.stdout  # no backend columns

    refused = run_cli(["leaderboard", "--battles", str(path), "--backend", "llamacpp"], env)
    assert refused.returncode == 2 and "--backend cannot filter them" in refused.stderr


@pytest.mark.slow
def test_leaderboard_bad_battle_line_is_one_sentence_and_exit_2(tmp_path, env):
    path = tmp_path / "battles.jsonl"
    good = json.dumps({"model_a": "a", "model_b": "b", "winner": "model_a"})
    path.write_text(good + "\n" + good + "\n" + json.dumps({"model_a": "a", "model_b": "b", "winner": "a"}) + "\n")
    done = run_cli(["leaderboard", "--battles", str(path)], env)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: Line 3 of battles.jsonl has winner 'a'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    missing = run_cli(["leaderboard", "--battles", str(tmp_path / "nope.json")], env)
    assert missing.returncode == 2 and "There is no battle file" in missing.stderr


def in_process(args: list[str], home, monkeypatch, capsys) -> tuple[int, str, str]:
    """The same CLI in this interpreter (faster than a subprocess): exit code, stdout, stderr."""
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_leaderboard_export_import_from_the_store(tmp_path, env, monkeypatch, capsys):
    home = tmp_path / "home"
    with Store(f"sqlite:///{home / 'var' / 'workbench.db'}") as store:
        ids = {ck: store.add_generation(ck, "Hi?", f"{ck} answer", None) for ck in ("base", "tuned")}
        for i in range(5):  # five raters: one ballot each per pair
            store.add_vote(ids["base"], ids["tuned"], "b", rater=f"alice{i}", shown_left="ab"[i % 2])
        store.add_vote(ids["base"], ids["tuned"], "a", rater="bob")
    done = run_cli(["leaderboard", "--bootstrap", "50", "--json"], env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [m["model"] for m in result["models"]] == ["tuned", "base"] and result["battles"] == 6
    assert result["backends"] == ["unknown"]  # stored without stats: no backend recorded
    out = tmp_path / "votes.csv"
    done = run_cli(["export", "--what", "votes", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    assert "Wrote 6 votes records" in done.stdout and out.read_text().startswith("id,generation_a_uid")

    code, stdout, _ = in_process(["leaderboard", "--rater", "bob", "--json"], home, monkeypatch, capsys)
    assert code == 0 and json.loads(stdout)["models"][0]["model"] == "base"
    for what, name in (("generations", "gens.jsonl"), ("preferences", "dpo.jsonl")):
        assert in_process(["export", "--what", what, "--out", str(tmp_path / name)], home, monkeypatch, capsys)[0] == 0
    assert len((tmp_path / "dpo.jsonl").read_text().splitlines()) == 6

    other = tmp_path / "other"
    code, _, err = in_process(["import", "--what", "votes", str(out)], other, monkeypatch, capsys)
    assert code == 2 and "import the generations first" in err  # generations first
    gens = str(tmp_path / "gens.jsonl")
    assert "Imported 2 new" in in_process(["import", "--what", "generations", gens], other, monkeypatch, capsys)[1]
    assert "Imported 6 new" in in_process(["import", "--what", "votes", str(out)], other, monkeypatch, capsys)[1]
    code, stdout, _ = in_process(["leaderboard", "--bootstrap", "50", "--json"], other, monkeypatch, capsys)
    again = json.loads(stdout)
    assert [m["model"] for m in again["models"]] == ["tuned", "base"] and again["battles"] == 6


def test_leaderboard_filters_by_backend(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    with Store(f"sqlite:///{home / 'var' / 'workbench.db'}") as store:
        made = {
            (ck, backend): store.add_generation(ck, "Hi?", f"{ck} via {backend}", None, stats={"backend": backend})
            for ck in ("base", "tuned")
            for backend in ("llamacpp", "transformers")
        }
        for rater in ("alice", "bob", "carol"):  # tuned wins on llama.cpp
            store.add_vote(made["base", "llamacpp"], made["tuned", "llamacpp"], "b", rater=rater)
        for rater in ("alice", "bob"):  # base wins on transformers
            store.add_vote(made["base", "transformers"], made["tuned", "transformers"], "a", rater=rater)
        store.add_vote(made["base", "llamacpp"], made["tuned", "transformers"], "tie", rater="alice")  # mixed
        old = {ck: store.add_generation(ck, "Hi?", f"{ck} from before", None) for ck in ("base", "tuned")}
        store.add_vote(old["base"], old["tuned"], "a", rater="alice")

    def board(*args: str) -> dict:
        code, out, err = in_process(["leaderboard", "--bootstrap", "20", "--json", *args], home, monkeypatch, capsys)
        assert code == 0, err
        return json.loads(out)

    everything = board()
    assert everything["battles"] == 7 and everything["backends"] == ["llamacpp", "transformers", "unknown"]
    llama = board("--backend", "llamacpp")
    assert llama["battles"] == 3 and llama["backends"] == ["llamacpp"]
    assert [m["model"] for m in llama["models"]] == ["tuned", "base"]
    hf = board("--backend", "transformers")
    assert hf["battles"] == 2 and [m["model"] for m in hf["models"]] == ["base", "tuned"]
    both = board("--backend", "llamacpp", "--backend", "transformers")  # repeatable; the mixed battle counts
    assert both["battles"] == 6 and both["backends"] == ["llamacpp", "transformers"]
    assert board("--backend", "unknown")["battles"] == 1
    none = board("--backend", "vllm")
    assert none["battles"] == 0 and none["backends"] == [] and none["models"] == []

    code, out, _ = in_process(["leaderboard", "--bootstrap", "0", "--backend", "llamacpp"], home, monkeypatch, capsys)
    assert code == 0 and "3 battles, 0 bootstrap rounds; backends: llamacpp." in out
    code, out, _ = in_process(["leaderboard", "--backend", "vllm"], home, monkeypatch, capsys)
    assert code == 0 and "No pairwise votes" in out and "match the filters" in out


def test_export_needs_the_admin_token_when_set(tmp_path, env):
    guarded = {**env, "WORKBENCH_ADMIN_TOKEN": "t0ken"}
    out = str(tmp_path / "v.jsonl")
    refused = run_cli(["export", "--what", "votes", "--out", out], guarded)
    assert refused.returncode == 2 and "admin token" in refused.stderr
    assert run_cli(["export", "--what", "votes", "--out", out, "--token", "t0ken"], guarded).returncode == 0


def test_empty_store_says_so(env):
    done = run_cli(["leaderboard"], env)
    assert done.returncode == 0 and "No pairwise votes" in done.stdout
    assert json.loads(run_cli(["leaderboard", "--json"], env).stdout)["models"] == []


@pytest.mark.postgres
def test_leaderboard_reads_a_postgresql_store(postgres_url, env):
    with Store(postgres_url) as store:
        a, b = (store.add_generation(ck, "Hi?", f"{ck} answer", None) for ck in ("pg-base", "pg-tuned"))
        for rater in ("alice", "bob", "carol"):
            store.add_vote(a, b, "b", rater=rater)
    done = run_cli(["leaderboard", "--bootstrap", "20", "--json"], {**env, "WORKBENCH_DB_URL": postgres_url})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [m["model"] for m in result["models"]] == ["pg-tuned", "pg-base"] and result["battles"] == 3
    assert "postgres@" not in result["source"]  # the user name is not echoed
