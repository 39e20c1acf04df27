"""One person, one ballot: an anonymous voter (the keyed id of their address) who signs in with Hugging Face is
joined to their login, never counted twice, on a real SQLite store; typed names on the owner's machine stay
separate raters even when they share the machine.
"""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store.records import anonymous_rater

VOTER = "0123456789abcdef0123456789abcdef"  # a voter id as workbench.access.voter_id makes them


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'ids.db'}") as s:
        yield s


def pairs(store: Store, n: int) -> list[tuple[int, int]]:
    out = []
    for i in range(n):
        a = store.add_generation("base", f"Question {i}?", f"base {i}", None)
        b = store.add_generation("rival", f"Question {i}?", f"rival {i}", None)
        out.append((a, b))
    return out


def test_signing_in_joins_the_anonymous_ballots_and_gives_no_second_one(store):
    (p1, p2, p3) = pairs(store, 3)
    store.add_vote(*p1, "a", rater=None, session=VOTER)
    store.add_vote(*p2, "b", rater=None, session=VOTER)
    # Signed in now, on a pair they already judged anonymously: the first ballot is the one that counts.
    first = store.add_vote(*p1, "b", rater="alice@hf", session=VOTER)
    votes = store.votes()
    assert len(votes) == 2 and votes.set_index("id").loc[first, "winner"] == "a"
    assert store.join_rater(VOTER, "alice@hf") == 2
    raters = store.votes()["rater"].tolist()
    assert raters == ["alice@hf", "alice@hf"]
    store.add_vote(*p3, "tie", rater="alice@hf", session=VOTER)
    # Signed out again, the same address: no second ballot on what alice judged.
    store.add_vote(*p3, "a", rater=None, session=VOTER)
    assert len(store.votes()) == 3 and anonymous_rater(VOTER) not in set(store.votes()["rater"])


def test_joining_keeps_the_earlier_ballot_where_both_identities_voted(store):
    (p1,) = pairs(store, 1)
    store.add_vote(*p1, "a", rater=None, session=VOTER, created_at=100.0)
    store.add_vote(*p1, "b", rater="alice@hf", session="another-voter-id", created_at=200.0)  # before the join rule
    assert store.join_rater(VOTER, "alice@hf") == 1
    votes = store.votes()
    assert len(votes) == 1 and votes["winner"].iloc[0] == "a" and votes["rater"].iloc[0] == "alice@hf"
    with pytest.raises(WorkbenchError, match="session id"):
        store.join_rater("x", "alice@hf")


def test_typed_names_on_one_machine_stay_separate_raters(store):
    (p1,) = pairs(store, 1)
    store.add_vote(*p1, "a", rater="alice", session=VOTER)
    store.add_vote(*p1, "b", rater="bob", session=VOTER)  # two colleagues at the owner's laptop
    assert sorted(store.votes()["rater"]) == ["alice", "bob"]
