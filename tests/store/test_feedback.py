"""The chat's feedback in the store, on SQLite and on a real PostgreSQL: likes, dislikes, regenerate pairs.

Run: .venv/bin/python -m pytest -q tests/store/test_feedback.py
Covers: one current reaction per visitor and reply (the newest row; rows are only added), preference pairs between
two replies of one conversation (once per visitor), refusals in one sentence, the votes/preferences exports with
their `source` and the feedback export, importing them into another store (twice adds nothing), DPO from votes
keeping the Arena's votes and the chat's pairs apart, and a database at revision 0005 upgraded with its rows kept.
"""

from __future__ import annotations

import json

import pytest

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import db as store_db
from workbench.training.votes import VoteFilters, vote_pairs

VOTER = "voter-0123456789abcdef"
ASKED = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


def replies(store: Store) -> dict[str, int]:
    """Three chat replies to one conversation (the second and third regenerated) and an Arena pair."""
    ids = {
        name: store.add_generation("base", ASKED, f"{name}!", None, origin="chat") for name in ("red", "blue", "teal")
    }
    ids["arena-a"] = store.add_generation("base", "Hi?", "Hello.", None)
    ids["arena-b"] = store.add_generation("run", "Hi?", "Hey.", None)
    return ids


def test_the_newest_reaction_counts_and_rows_are_only_added(store):
    ids = replies(store)
    store.add_feedback("like", ids["red"], rater=None, session=VOTER)
    store.add_feedback("dislike", ids["red"], rater=None, session=VOTER)  # changed their mind
    store.add_feedback("like", ids["blue"], rater=None, session=VOTER)
    store.add_feedback("cleared", ids["blue"], rater=None, session=VOTER)  # took it back
    store.add_feedback("like", ids["blue"], rater="alice")
    now = store.reactions()
    assert sorted(zip(now["generation_id"], now["kind"], now["rater"], strict=True)) == sorted(
        [(ids["red"], "dislike", f"anon-{VOTER[:16]}"), (ids["blue"], "like", "alice")]
    )
    assert store.reaction_counts().to_dict("records") == [{"model": "base", "likes": 1, "dislikes": 1}]
    assert [r["kind"] for r in store.feedback_rows()] == ["like", "dislike", "like", "cleared", "like"]


def test_a_regenerate_pair_is_recorded_once_and_checked(store):
    ids = replies(store)
    first = store.add_feedback("preferred", ids["blue"], other=ids["red"], rater=None, session=VOTER)
    again = store.add_feedback("preferred", ids["blue"], other=ids["red"], rater=None, session=VOTER)
    assert first == again and len(store.feedback_rows()) == 1
    with pytest.raises(WorkbenchError, match="must answer the same conversation"):
        store.add_feedback("preferred", ids["blue"], other=ids["arena-a"], rater=None, session=VOTER)
    with pytest.raises(WorkbenchError, match="names the reply kept and the one it replaced"):
        store.add_feedback("preferred", ids["blue"], rater=None, session=VOTER)
    with pytest.raises(WorkbenchError, match="Feedback must be one of"):
        store.add_feedback("love", ids["blue"], rater=None, session=VOTER)
    with pytest.raises(WorkbenchError, match="no generation with id 999"):
        store.add_feedback("like", 999, rater=None, session=VOTER)
    assert len(store.feedback_rows()) == 1  # nothing was recorded by the refusals


def test_exports_keep_the_arena_and_the_chat_apart_and_import_into_another_store(store, tmp_path):
    ids = replies(store)
    store.add_vote(ids["arena-a"], ids["arena-b"], "b", rater="alice")
    store.add_feedback("preferred", ids["teal"], other=ids["blue"], rater=None, session=VOTER)
    store.add_feedback("like", ids["teal"], rater=None, session=VOTER)
    votes, _ = store.export_records("votes")
    assert [v["source"] for v in votes] == ["arena", "chat"]
    chat = store.export_records("votes", source="chat")[0][0]
    assert chat["model_a"] == "base" and chat["winner"] == "a" and chat["generation_a_uid"]
    pairs, _ = store.export_records("preferences", source="chat")
    assert pairs == [
        {
            "prompt": ASKED,
            "chosen": [{"role": "assistant", "content": "teal!"}],
            "rejected": [{"role": "assistant", "content": "blue!"}],
            "source": "chat",
        }
    ]
    assert len(store.export_records("preferences", source="arena")[0]) == 1
    with pytest.raises(WorkbenchError, match="source must be one of"):
        store.export_records("votes", source="judge")

    for what in ("generations", "votes", "feedback"):
        store.export(what, "jsonl", tmp_path / f"{what}.jsonl")
    assert json.loads((tmp_path / "generations.jsonl").read_text().splitlines()[0])["origin"] == "chat"
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        for _ in range(2):  # a second import adds nothing
            for what in ("generations", "votes", "feedback"):
                copy.import_file(what, tmp_path / f"{what}.jsonl")
        assert len(copy.votes()) == 1 and len(copy.feedback_rows()) == 2
        assert [r["kind"] for r in copy.feedback_rows()] == ["preferred", "like"]
        assert copy.export_records("preferences", source="chat")[0] == pairs
        assert set(copy.generations()["origin"].dropna()) == {"chat"}


def test_dpo_from_votes_takes_the_source_asked_for(store, tmp_path):
    ids = replies(store)
    store.add_vote(ids["arena-a"], ids["arena-b"], "a", rater="alice")
    store.add_feedback("preferred", ids["blue"], other=ids["red"], rater=None, session=VOTER)
    settings = Settings(home=tmp_path)
    counted = {
        source: vote_pairs(store, settings, VoteFilters(source=source, unreviewed=True))[1]["pairs"]
        for source in ("arena", "chat", "all")
    }
    assert counted == {"arena": 1, "chat": 1, "all": 2}
    # By default a regenerate pair (one visitor's verdict on their own chat) is not training data.
    assert vote_pairs(store, settings, VoteFilters(source="chat"))[1] == {"votes": 1, "unreviewed": 1, "pairs": 0}
    records, _ = vote_pairs(store, settings, VoteFilters(source="chat", unreviewed=True))
    assert records[0]["chosen"][0]["content"] == "blue!" and records[0]["chosen_checkpoint"] == "base"
    with pytest.raises(WorkbenchError, match="source must be one of"):
        VoteFilters(source="likes")


def test_database_at_0005_gains_feedback_and_origin_with_rows_kept(db_url):
    from sqlalchemy import inspect, text

    engine = store_db.make_engine(db_url)
    store_db.migrate(engine, "0005")  # a database made before chat feedback
    assert "origin" not in {c["name"] for c in inspect(engine).get_columns("generations")}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO checkpoints (name, created_at) VALUES ('old-ck', 1.0)"))
        conn.execute(
            text(
                "INSERT INTO generations (uid, checkpoint_id, prompt, messages, prompt_hash, settings, settings_hash,"
                " output, created_at) SELECT 'u1', id, 'Hi', :msgs, 'h', '{}', 's', 'Hello', 1.0 FROM checkpoints"
            ),
            {"msgs": json.dumps([{"role": "user", "content": "Hi"}])},
        )
    engine.dispose()
    with Store(db_url) as store:  # opening upgrades
        assert store_db.current_revision(store.engine) == store_db.head_revision()
        old = store.generations()
        assert list(old["uid"]) == ["u1"] and old["origin"].isna().all()  # not a visitor's typing
        store.add_feedback("like", int(old["id"].iloc[0]), rater="alice")
        assert [r["generation_uid"] for r in store.feedback_rows()] == ["u1"]


def test_every_store_source_takes_the_origin_and_date_filters(store, tmp_path):
    """Votes, likes and corrections are filtered by where their replies came from and by the day (issue 29)."""
    from workbench.training.filters import FeedbackFilters
    from workbench.training.likes import like_records
    from workbench.training.votes import correction_examples

    ids, day, start = replies(store), 86400.0, 1_796_000_000.0  # 2026-11-30 (UTC)
    store.add_vote(ids["arena-a"], ids["arena-b"], "a", rater="alice", created_at=start)  # replies of no origin
    store.add_feedback("preferred", ids["blue"], other=ids["red"], rater="bob", created_at=start + 2 * day)
    store.add_feedback("like", ids["teal"], rater="bob", created_at=start + 2 * day)
    store.add_correction(ids["red"], "Red.", rater="carol", created_at=start + 4 * day)
    settings = Settings(home=tmp_path)

    def pairs(**filters) -> int:
        return vote_pairs(store, settings, VoteFilters(source="all", unreviewed=True, **filters))[1]["pairs"]

    assert pairs() == 3  # the Arena's vote, the chat's regenerate pair, the correction
    assert (pairs(origin="chat"), pairs(origin="battle")) == (2, 0)
    assert (pairs(since="2026-12-02"), pairs(until="2026-12-01"), pairs(since="2026-12-03", until="2026-12-04")) == (
        2,
        1,
        1,
    )
    assert like_records(store, settings, FeedbackFilters(origin="chat", until="2026-12-02"))[1]["liked"] == 1
    assert like_records(store, settings, FeedbackFilters(until="2026-12-01"))[1] == {"reactions": 1, "filtered_out": 1}
    assert correction_examples(store, settings, FeedbackFilters(until="2026-12-03"), "sft")[1]["examples"] == 0
    assert correction_examples(store, settings, FeedbackFilters(origin="chat"), "sft")[1]["examples"] == 1
