"""A rater's weight on the leaderboard (workbench/ratings/raters.py) and the owner's drop (workbench/store/raters.py).

Run: .venv/bin/python -m pytest -q tests/ratings/test_raters.py
Synthetic votes from a known Bradley-Terry truth: honest raters vote by it, an adversarial rater always for the
side the truth favours less, a steering rater 200 times for one side of one pair. The cap bounds the steering
rater's pull on the ratings, the outlier test flags the adversarial and the steering rater, and flags no honest
rater in nearly every one of 20 simulated arenas (Holm keeps the family-wise rate at 5%). Dropping a rater keeps
their votes in the store, leaves them out of the leaderboard, and taking them back restores the ratings exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.access import Caller
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.ratings import raters, scoring
from workbench.ratings.snapshot import ranked, raters_of, snapshot
from workbench.store import Store

TRUTH = {"base": 0.0, "run-a": 1.0, "run-b": -0.7}  # log-odds strengths: run-a > base > run-b
NAMES = list(TRUTH)
VISITOR = Caller("203.0.113.9", local=False)


def cast(rng: np.random.Generator, rater: str, n: int, mode: str = "honest") -> list[tuple[str, str, str, str]]:
    """`n` votes by `rater` on random pairs of TRUTH's contestants: honest (drawn from the truth), or adversarial
    (always the side the truth favours less)."""
    rows = []
    for _ in range(n):
        a, b = (NAMES[k] for k in rng.choice(len(NAMES), 2, replace=False))
        p_a = 1 / (1 + np.exp(TRUTH[b] - TRUTH[a]))
        a_wins = rng.random() < p_a if mode == "honest" else p_a < 0.5
        rows.append((a, b, "model_a" if a_wins else "model_b", rater))
    return rows


def battles(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner", "judge"])


def arena(seed: int, honest: int = 30, votes: int = 15) -> list[tuple[str, str, str, str]]:
    rng = np.random.default_rng(seed)
    return [row for k in range(honest) for row in cast(rng, f"anon-{seed:03d}{k:012d}", votes)]


STEER = [("run-b", "run-a", "model_a", "anon-steer0000000000")] * 200  # run-b over run-a, again and again


def test_the_cap_bounds_a_steering_visitor_and_leaves_others_whole():
    honest = battles(arena(1))
    steered = battles(arena(1) + STEER)
    weighted = raters.capped(steered, 10)
    assert weighted.loc[weighted["judge"] == STEER[0][3], "weight"].sum() == pytest.approx(10)
    assert (weighted.loc[weighted["judge"] != STEER[0][3], "weight"] == 1).all()  # under the cap: counted whole
    gap = {}
    for name, frame in (("honest", honest), ("uncapped", steered), ("capped", weighted)):
        board = scoring.leaderboard(frame, bootstrap=0).set_index("model")["rating"]
        gap[name] = board["run-a"] - board["run-b"]
    assert gap["uncapped"] < 0 < gap["capped"]  # 200 votes flip run-a and run-b; capped, they cannot
    assert gap["honest"] - gap["capped"] < 0.5 * gap["honest"]  # ten votes' pull, not two hundred's
    # What is shown stays the votes cast; a name the owner typed is not capped; a cap of 0 changes nothing.
    assert (
        scoring.leaderboard(weighted, bootstrap=0).set_index("model").loc["run-b", "battles"]
        == (scoring.leaderboard(steered, bootstrap=0).set_index("model").loc["run-b", "battles"])
    )
    owner = steered.assign(judge=steered["judge"].replace(STEER[0][3], "alice"))
    assert raters.capped(owner, 10)["weight"].max() == 1 and raters.capped(owner, 10)["weight"].sum() == len(owner)
    assert "weight" not in raters.capped(steered, 0).columns


def test_an_adversarial_and_a_steering_rater_are_flagged_and_honest_ones_are_not():
    rng = np.random.default_rng(7)
    frame = battles(arena(7) + cast(rng, "anon-against000000000", 30, "adversarial") + STEER)
    table = raters.rater_table(frame, cap=10).set_index("rater")
    assert set(table.index[table["flagged"]]) == {"anon-against000000000", STEER[0][3]}
    bad = table.loc["anon-against000000000"]
    assert bad["against"] == 30 and bad["expected"] < 12 and bad["p_value"] < 1e-6
    assert table.loc[STEER[0][3], "counted"] == pytest.approx(10) and table.loc[STEER[0][3], "votes"] == 200
    assert table["share"].sum() == pytest.approx(1) and table["tested"].min() >= raters.MIN_TESTED


def test_honest_raters_are_almost_never_flagged():
    """20 arenas of 30 honest raters with 5 to 30 votes each: Holm at 5% allows about one arena with a flag."""
    flagged_arenas, flagged_raters, tested = 0, 0, 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        rows = [row for k in range(30) for row in cast(rng, f"anon-{seed:03d}{k:012d}", int(rng.integers(5, 31)))]
        table = raters.outliers(battles(rows))
        flagged_arenas += bool(table["flagged"].any())
        flagged_raters += int(table["flagged"].sum())
        tested += int(table["p_value"].notna().sum())
    assert tested == 600 and flagged_arenas <= 2 and flagged_raters / tested < 0.005


def test_the_tail_and_holm_are_the_textbook_ones():
    assert raters._upper_tail(np.full(10, 0.5), 10) == pytest.approx(0.5**10)
    assert raters._upper_tail(np.full(10, 0.5), 0) == 1.0
    q = np.full(6000, 0.3)  # past EXACT_UP_TO: the normal tail, close to the binomial's mean
    assert raters._upper_tail(q, 1800) == pytest.approx(0.5, abs=0.02)
    assert list(raters.holm(np.array([0.01, 0.04, 0.03, 0.5]), 0.05)) == [True, False, False, False]
    assert list(raters.holm(np.array([0.001, 0.012, 0.5]), 0.05)) == [True, True, False]


@pytest.fixture
def store(tmp_path):
    """Two checkpoints, five named raters (the owner's) and a visitor who votes 40 times against everyone."""
    with Store(f"sqlite:///{tmp_path / 'store.db'}", admin_token="s3cret") as s:
        rng = np.random.default_rng(3)
        for k in range(40):
            a = s.add_generation("run-a", f"Q{k}?", f"A{k}.", None)
            b = s.add_generation("base", f"Q{k}?", f"B{k}.", None)
            for rater in ("alice", "bob", "carol", "dave", "erin"):
                if rng.random() < 0.5:
                    s.add_vote(a, b, "a" if rng.random() < 0.75 else "b", rater=rater)
            s.add_vote(a, b, "b", rater=None, session=f"visitor-{0:012d}")
        yield s


def test_drop_keeps_the_votes_leaves_them_out_and_undrop_restores(store):
    visitor = next(r for r in store.raters() if r.startswith("anon-"))
    before = ranked(snapshot(store), bootstrap=0, cap=10).standings.board.set_index("model")["rating"]
    table = raters_of(snapshot(store), cap=10).set_index("rater")
    assert table.loc[visitor, "flagged"] and table.loc[visitor, "counted"] == 10 and table["flagged"].sum() == 1
    with pytest.raises(WorkbenchError, match="admin token"):
        store.drop_rater(visitor, token="wrong", who=VISITOR)
    with pytest.raises(WorkbenchError, match="no rater named 'nobody'"):
        store.drop_rater("nobody", token="s3cret")
    assert store.drop_rater(visitor, reason="votes against everyone", token="s3cret")
    assert not store.drop_rater(visitor, token="s3cret")  # dropped already
    assert store.dropped_raters() == {visitor: "votes against everyone"}
    assert len(store.votes(rater=visitor)) == 40  # kept in the store
    dropped = ranked(snapshot(store), bootstrap=0, cap=10)
    assert visitor not in dropped.raters and dropped.standings.votes == len(store.votes()) - 40
    after = dropped.standings.board.set_index("model")["rating"]
    assert after["run-a"] - after["base"] > before["run-a"] - before["base"]
    table = raters_of(snapshot(store), cap=10).set_index("rater")
    assert table.loc[visitor, "dropped"] and table.loc[visitor, "counted"] == 0 and table.loc[visitor, "flagged"]
    assert store.undrop_rater(visitor, token="s3cret") and not store.undrop_rater(visitor, token="s3cret")
    again = ranked(snapshot(store), bootstrap=0, cap=10).standings.board.set_index("model")["rating"]
    assert (again == before).all()


def test_cli_per_rater_drop_and_undrop(store, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_DB_URL", store.url)
    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", "s3cret")
    visitor = next(r for r in store.raters() if r.startswith("anon-"))
    assert main(["leaderboard", "--per-rater", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cap"] == 10 and [r["rater"] for r in out["raters"] if r["flagged"]] == [visitor]
    assert main(["leaderboard", "--drop", visitor]) == 2  # an admin action: the token is asked for
    assert "admin token" in capsys.readouterr().err
    assert main(["leaderboard", "--drop", visitor, "--token", "s3cret", "--reason", "steering"]) == 0
    assert "is dropped" in capsys.readouterr().out and store.dropped_raters() == {visitor: "steering"}
    assert main(["leaderboard", "--json", "--bootstrap", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["battles"] == len(store.votes()) - 40
    assert main(["leaderboard", "--per-rater"]) == 0
    assert "dropped" in capsys.readouterr().out
    assert main(["leaderboard", "--undrop", visitor, "--token", "s3cret"]) == 0
    assert "counts again" in capsys.readouterr().out and store.dropped_raters() == {}
