"""An LLM judge's votes in the store and its agreement with the people, against hand-computed values.

Run: .venv/bin/python -m pytest -q tests/ratings/test_agreement.py
A real store (SQLite, then PostgreSQL) holds people's votes and judges' verdicts (with both orders in the
reason, as the judge command writes them). Covers: judge rater names (people cannot take one), the pairs a judge
is offered (people's pairs, a prompt set's, the ones it already judged skipped), the MT-bench agreement (with and
without ties, Cohen's kappa, position consistency, people against people) worked out by hand below, the verdict
parser, the humans/judges/all filter of the leaderboard (library and `leaderboard --raters`) and of DPO from
votes, and `export --what votes` carrying judges' votes like any other.
"""

from __future__ import annotations

import json
import math

import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.ratings.agreement import judge_agreement
from workbench.ratings.leaderboard import filter_ratings
from workbench.store import Store, check_rater, judge_rater
from workbench.store.judging import judge_reason, orders_of
from workbench.studio.judge import about_generations, combined, parse_verdict
from workbench.training.votes import VoteFilters, vote_pairs

JUDGE = "judge:smol"
SAME = GenerationSettings(temperature=0, seed=0)

# pair: (people's votes, the judge's verdicts with a shown first and with b shown first, or None)
CASE = {
    "P1": ({"alice": "a", "bob": "a", "carol": "b"}, ("a", "a")),
    "P2": ({"alice": "b", "bob": "bothbad"}, ("b", "b")),
    "P3": ({"alice": "tie"}, ("a", "a")),
    "P4": ({"alice": "a"}, None),  # people only: not shared
    "P5": ({}, ("b", "a")),  # the judge only, and its verdict flipped with the order: a tie
}


def seed_case(store: Store) -> dict[str, tuple[int, int]]:
    """The CASE in a store: each pair is one prompt answered by checkpoints X (a) and Y (b); returns their ids."""
    ids = {}
    for pair, (people, verdicts) in CASE.items():
        a = store.add_generation("X", f"Question {pair}?", f"X answers {pair}.", SAME)
        b = store.add_generation("Y", f"Question {pair}?", f"Y answers {pair}.", SAME)
        ids[pair] = (a, b)
        for rater, winner in people.items():
            store.add_vote(a, b, winner, rater=rater)
        if verdicts:
            reason = judge_reason(*verdicts, ("Verdict: A", "Verdict: B"))
            store.add_vote(a, b, combined(*verdicts), rater=JUDGE, reason=reason)
    store.add_vote(*ids["P1"], "b", rater="judge:other")  # another judge: never compared
    return ids


@pytest.fixture
def store(db_url):
    """The CASE in a real store: SQLite, then PostgreSQL."""
    with Store(db_url) as store:
        store.ids = seed_case(store)
        yield store


def test_judge_agreement_matches_the_hand_computed_case(store):
    got = judge_agreement(store.pair_verdicts(), JUDGE)
    # Judge vs people, one comparison per person's vote on P1-P3 (judge a, b, a):
    #   P1 a/a, a/a, a/b; P2 b/b, b/tie (both bad is a tie); P3 a/tie -> 3 of 6 agree with ties;
    #   without ties only P1's three and P2's b/b count -> 3 of 4.
    assert (got["pairs"], got["comparisons"], got["comparisons_without_ties"]) == (3, 6, 4)
    assert got["agreement_with_ties"] == pytest.approx(0.5)
    assert got["agreement_without_ties"] == pytest.approx(0.75)
    # kappa: p_o = 1/2; judge a 4/6, b 2/6; people a 2/6, b 2/6, tie 2/6 -> p_e = 8/36 + 4/36 = 1/3
    assert got["kappa"] == pytest.approx((1 / 2 - 1 / 3) / (1 - 1 / 3))
    # Position consistency: P1, P2, P3 kept their verdict in both orders, P5 flipped -> 3 of 4 verdicts
    assert got["verdicts"] == 4 and got["position_consistency"] == pytest.approx(0.75)
    # People vs people on the shared pairs: P1 a-a, a-b, a-b; P2 b-tie -> 1 of 4; without ties 1 of 3
    assert (got["human_human_pairs"], got["human_human_comparisons"]) == (2, 4)
    assert got["human_human_with_ties"] == pytest.approx(0.25)
    assert got["human_human_without_ties"] == pytest.approx(1 / 3)
    # kappa over both orders of each comparison: p_o = 2/8, labels a 4/8, b 3/8, tie 1/8 -> p_e = 26/64
    assert got["human_human_kappa"] == pytest.approx((2 / 8 - 26 / 64) / (1 - 26 / 64))


def test_agreement_without_anything_shared_is_nan_not_an_error(store):
    none = judge_agreement(store.pair_verdicts(), "judge:nobody")
    assert none["pairs"] == 0 and none["verdicts"] == 0
    assert all(math.isnan(none[k]) for k in ("agreement_with_ties", "kappa", "position_consistency"))
    empty = judge_agreement(store.pair_verdicts().iloc[:0], JUDGE)
    assert empty["comparisons"] == 0 and math.isnan(empty["human_human_with_ties"])


def test_verdicts_read_back_both_orders_only_for_judges(store):
    verdicts = store.pair_verdicts()
    mine = verdicts[verdicts["rater"] == JUDGE].set_index("generation_a_id")
    assert mine.loc[store.ids["P5"][0], ["winner", "first", "second"]].tolist() == ["tie", "b", "a"]
    assert verdicts.loc[verdicts["rater"] == "alice", "first"].isna().all()
    assert verdicts.loc[verdicts["rater"] == "judge:other", "first"].isna().all()  # recorded no orders
    assert orders_of("order a,b -> tie; order b,a -> b\na,b: ...") == ("tie", "b") and orders_of("nice") is None


def test_judge_names_are_apart_from_peoples(store):
    assert judge_rater("SmolLM2-135M-Instruct") == "judge:SmolLM2-135M-Instruct"
    assert judge_rater("judge:gpt4o-mini/my-run") == "judge:gpt4o-mini/my-run"
    for bad in ("", "x" * 60, "bad\nname"):
        with pytest.raises(WorkbenchError, match="judge's name"):
            judge_rater(bad)
    with pytest.raises(WorkbenchError, match="rater name"):
        check_rater("judge:smol")  # what the Rate page and the Arena apply to a typed name


def test_a_judge_is_offered_the_pairs_people_voted_on_less_those_it_judged(store):
    left = store.judge_pairs(JUDGE)
    assert [(p.a, p.b) for p in left.pairs] == [store.ids["P4"]] and (left.judged, left.waiting) == (3, 1)
    assert left.pairs[0].messages[-1]["content"] == "Question P4?" and left.pairs[0].output_b == "Y answers P4."
    fresh = store.judge_pairs("judge:new", limit=2)
    assert [(p.a, p.b) for p in fresh.pairs] == [store.ids["P1"], store.ids["P2"]]
    assert (fresh.judged, fresh.waiting) == (0, 4)  # P1-P4; P5 no person voted on


def test_a_prompt_sets_pairs_are_its_prompts_answers_under_the_same_settings(store):
    store.add_prompt_set("two", ["Question P5?", "Question P9?"])
    other = store.add_generation("Z", "Question P5?", "Z answers.", GenerationSettings(temperature=0, seed=1))
    lone = store.add_generation("Z", "Question P9?", "Z alone.", SAME)
    mine = store.judge_pairs(JUDGE, prompt_set="two")
    assert (mine.pairs, mine.judged, mine.waiting) == ([], 1, 0)  # P5 judged; Z's other settings; P9 alone
    new = store.judge_pairs("judge:new", prompt_set="two")
    assert [(p.a, p.b, p.model_a, p.model_b) for p in new.pairs] == [(*store.ids["P5"], "X", "Y")]
    assert other not in {p.b for p in new.pairs} and lone not in {p.b for p in new.pairs}
    with pytest.raises(WorkbenchError, match="no prompt set named 'nope'"):
        store.judge_pairs(JUDGE, prompt_set="nope")


def test_the_leaderboard_counts_people_unless_asked(store):
    tallies = store.vote_tallies()

    def votes(kind):
        return int(filter_ratings(tallies, rater_kind=kind)["n"].sum())

    assert (votes("humans"), votes("judges"), votes("all")) == (7, 5, 12)
    assert int(filter_ratings(tallies)["n"].sum()) == 7  # the default
    assert len(filter_ratings(store.vote_sequence(), rater_kind="judges", raters=[JUDGE])) == 4
    with pytest.raises(WorkbenchError, match="humans, judges, all"):
        filter_ratings(tallies, rater_kind="robots")


def test_leaderboard_cli_raters_flag(store, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_DB_URL", store.url)
    counted = {}
    for kind in ("humans", "judges", "all"):
        assert main(["leaderboard", "--json", "--bootstrap", "0", "--raters", kind]) == 0
        out = json.loads(capsys.readouterr().out)
        counted[kind] = (out["battles"], out["not_counted"], out["raters"])
    assert counted == {"humans": (7, 5, "humans"), "judges": (5, 7, "judges"), "all": (12, 0, "all")}
    assert main(["leaderboard", "--bootstrap", "0"]) == 0
    assert "(5 votes by LLM judges not counted.)" in capsys.readouterr().out


def test_dpo_from_votes_takes_people_unless_asked(store, tmp_path):
    from workbench.config import Settings

    settings = Settings(home=tmp_path)
    _, people = vote_pairs(store, settings, VoteFilters())
    _, judges = vote_pairs(store, settings, VoteFilters(rater_kind="judges"))
    _, everyone = vote_pairs(store, settings, VoteFilters(rater_kind="all"))
    assert (people["filtered_out"], judges["filtered_out"], everyone.get("filtered_out", 0)) == (5, 7, 0)
    assert VoteFilters(rater_kind="all").to_dict()["rater_kind"] == "all"
    with pytest.raises(WorkbenchError, match="not 'robots'"):
        VoteFilters(rater_kind="robots")


def test_judges_votes_export_and_import_like_any_vote(store, tmp_path):
    path = tmp_path / "votes.jsonl"
    store.export("votes", "jsonl", path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    judged = [r for r in rows if r["rater"] == JUDGE]
    assert len(judged) == 4 and all(r["reason"].startswith("order a,b -> ") for r in judged)
    generations = tmp_path / "generations.jsonl"
    store.export("generations", "jsonl", generations)
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        copy.import_file("generations", generations)
        assert copy.import_file("votes", path) == len(rows)
        again = judge_agreement(copy.pair_verdicts(), JUDGE)
    assert again["agreement_with_ties"] == pytest.approx(0.5) and again["position_consistency"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Verdict: A\n\nThe answer is better.", "A"),
        ('The answer "Verdict: B" is right.', "B"),
        ("Final verdict: **Assistant B**", "B"),
        ("VERDICT: tie, both are fine", "tie"),
        ("Long explanation first. [[A]]", "A"),
        ("[[C]]", "tie"),
        ("B", "B"),
        ("The answer of assistant B is indeed better", "B"),
        ('Reply "Verdict: A", "Verdict: B" or "Verdict: tie"', None),  # the instructions echoed: no verdict
        ("[[A]] ... on second thought [[B]]", None),
        ("A good answer needs more detail.", None),
        ("Verdict", None),  # cut before the verdict
        ("", None),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_verdicts_in_both_orders_become_one_vote():
    # shown b first, "A" means generation b
    assert about_generations("A", a_first=False) == "b" and about_generations("B", a_first=True) == "b"
    assert combined("a", "a") == "a" and combined("a", "b") == "tie" and combined("tie", "b") == "tie"
