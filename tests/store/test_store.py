"""Tests of workbench.store on SQLite and on a real PostgreSQL (tests/fixtures/postgres.py starts one).

Run: .venv/bin/python -m pytest -q tests/store/test_store.py
Covers generations and re-finding them, the backend that made each one (stored, in every ratings frame on the
right side, exported and imported, NULL when unknown), votes and Likert scores with idempotency keys, refusal of bad
input, serving items to raters, evaluation results and training logs, the admin token, export/import round trips
(and files from before backends were recorded), schema migrations (old databases at revisions 0001 and 0002
upgraded in place) and that the migrations match the ORM schema.
The many-raters concurrency tests are in tests/store/test_store_concurrency.py.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3

import pytest
from sqlalchemy import text

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, ReplyStats
from workbench.store import Store
from workbench.store import db as store_db

SETTINGS = GenerationSettings(temperature=0.7, top_p=0.9, seed=11)


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


def cells(frame, columns: list[str]) -> list[list]:
    """The frame's rows as lists, a missing value as None (pandas shows a missing text value as NaN)."""
    return [[None if v is None or v != v else v for v in row] for row in frame[columns].values.tolist()]


def seed_arena(store: Store, checkpoints=("base", "ck-100", "ck-200"), prompts=("Hi?", "Name a colour.")) -> dict:
    """One generation per (checkpoint, prompt); returns {(checkpoint, prompt): id}."""
    ids = {}
    for ck in checkpoints:
        for p in prompts:
            ids[ck, p] = store.add_generation(ck, p, f"{ck} says hello to {p}", SETTINGS)
    return ids


def test_generation_is_stored_with_settings_and_stats_and_found_again(store):
    stats = ReplyStats(model="smol", adapter=None, prompt_tokens=12, new_tokens=5, finish_reason="eos", seed=11)
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye?"},
    ]
    gid = store.add_generation("ck-1", messages, "Goodbye!", SETTINGS, system_prompt="Be brief.", stats=stats)
    found = store.find_generation(messages, "ck-1", SETTINGS, system_prompt="Be brief.")
    assert found is not None and found.id == gid
    assert found.output == "Goodbye!" and found.prompt == "Bye?" and found.system_prompt == "Be brief."
    assert found.messages[0] == {"role": "system", "content": "Be brief."}
    assert (found.new_tokens, found.prompt_tokens, found.finish_reason, found.seed) == (5, 12, "eos", 11)
    assert found.settings["top_p"] == 0.9
    # any difference in the request is another request
    assert store.find_generation(messages, "ck-1", SETTINGS.replace(seed=12), system_prompt="Be brief.") is None
    assert store.find_generation(messages, "ck-1", SETTINGS) is None  # no system prompt
    assert store.find_generation(messages, "other", SETTINGS, system_prompt="Be brief.") is None
    frame = store.generations(checkpoint="ck-1")
    assert list(frame["id"]) == [gid] and frame.loc[0, "temperature"] == 0.7 and frame.loc[0, "seed"] == 11
    assert store.checkpoints().set_index("name").loc["ck-1", "generations"] == 1


def test_backend_is_stored_from_the_stats_and_unknown_is_null(store):
    made = {
        "llamacpp": ReplyStats(model="smol", adapter=None, new_tokens=2, backend="llamacpp"),
        "transformers": {"new_tokens": 2, "backend": "transformers"},
        "empty": ReplyStats(model="smol", adapter=None, new_tokens=2),  # backend "" = unknown
        "none": None,
    }
    ids = {
        name: store.add_generation(f"ck-{name}", "Hi?", "Hello", SETTINGS, stats=stats) for name, stats in made.items()
    }
    assert store.get_generation(ids["llamacpp"]).backend == "llamacpp"
    assert store.find_generation("Hi?", "ck-transformers", SETTINGS).backend == "transformers"
    assert store.get_generation(ids["empty"]).backend is None and store.get_generation(ids["none"]).backend is None
    frame = store.generations()
    assert cells(frame, ["checkpoint", "backend"]) == [
        ["ck-llamacpp", "llamacpp"],
        ["ck-transformers", "transformers"],
        ["ck-empty", None],
        ["ck-none", None],
    ]
    with store.engine.connect() as conn:  # unknown is NULL in the database, not ""
        assert conn.execute(text("SELECT COUNT(*) FROM generations WHERE backend IS NULL")).scalar() == 2
    with pytest.raises(WorkbenchError, match="backend name"):
        store.add_generation("ck-x", "Hi?", "Hello", SETTINGS, stats={"backend": "x" * 33})
    with pytest.raises(WorkbenchError, match="backend name"):
        store.add_generation("ck-x", "Hi?", "Hello", SETTINGS, stats={"backend": 3})


def test_ratings_frames_carry_each_outputs_backend_on_its_side(store):
    llama = store.add_generation("base", "Hi?", "base answer", SETTINGS, stats={"backend": "llamacpp"})
    hf = store.add_generation("tuned", "Hi?", "tuned answer", SETTINGS, stats={"backend": "transformers"})
    old = store.add_generation("older", "Hi?", "older answer", SETTINGS)
    store.add_vote(llama, hf, "a", rater="alice", shown_left="b")  # transformers' output shown left
    store.add_vote(llama, old, "b", rater="bob", shown_left="a")
    store.add_likert(hf, 4, rater="carol")
    store.add_likert(old, 2, rater="carol")
    votes = store.votes()
    assert list(votes.columns[-2:]) == ["backend_a", "backend_b"]
    assert cells(votes, ["model_a", "backend_a", "model_b", "backend_b"]) == [
        ["base", "llamacpp", "tuned", "transformers"],
        ["base", "llamacpp", "older", None],
    ]
    battles = store.battles()
    fastchat = ["question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b", "turn"]
    assert list(battles.columns[: len(fastchat)]) == fastchat
    assert list(battles.columns[-2:]) == ["backend_a", "backend_b"]
    # model_a is the left output, and its backend goes with it
    assert cells(battles, ["model_a", "backend_a", "model_b", "backend_b", "winner"]) == [
        ["tuned", "transformers", "base", "llamacpp", "model_b"],
        ["base", "llamacpp", "older", None, "model_b"],
    ]
    likert = store.likert()
    assert cells(likert, ["model", "backend"]) == [["tuned", "transformers"], ["older", None]]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_backends_survive_export_and_old_exports_without_them_import(store, tmp_path, fmt):
    a = store.add_generation("base", "Hi?", "base answer", SETTINGS, stats={"backend": "llamacpp"})
    b = store.add_generation("tuned", "Hi?", "tuned answer", SETTINGS)
    store.add_vote(a, b, "b", rater="alice")
    store.add_likert(a, 3, rater="alice")
    for what in ("generations", "votes", "likert", "battles"):
        store.export(what, fmt, tmp_path / f"{what}.{fmt}")
    votes_file = (tmp_path / f"votes.{fmt}").read_text()
    assert "llamacpp" in votes_file and "llamacpp" in (tmp_path / f"battles.{fmt}").read_text()
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        assert copy.import_file("generations", tmp_path / f"generations.{fmt}") == 2
        assert copy.import_file("votes", tmp_path / f"votes.{fmt}") == 1
        assert cells(copy.votes(), ["backend_a", "backend_b"]) == [["llamacpp", None]]
        # the unknown backend went out as null / an empty cell (not pandas' NaN) and came back as unknown
        assert cells(copy.generations(), ["checkpoint", "backend"]) == [["base", "llamacpp"], ["tuned", None]]
    # a generations file written before backends were recorded has no backend field or column
    old = tmp_path / f"old.{fmt}"
    if fmt == "jsonl":
        lines = [json.loads(line) for line in (tmp_path / "generations.jsonl").read_text().splitlines()]
        assert all("backend" in line for line in lines)
        old.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "backend"}) + "\n" for line in lines))
    else:
        with open(tmp_path / "generations.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        columns = [c for c in rows[0] if c != "backend"]
        with open(old, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    with Store(f"sqlite:///{tmp_path / 'older.db'}") as older:
        assert older.import_file("generations", old) == 2
        assert cells(older.generations(), ["backend"]) == [[None], [None]]


def test_seed_picked_by_engine_is_recorded_but_request_matches(store):
    asked = GenerationSettings(seed=None)
    stats = {"seed": 4242, "new_tokens": 3, "finish_reason": "length"}
    gid = store.add_generation("base", "Hello", "Hi", asked, stats=stats)
    found = store.find_generation("Hello", "base", asked)
    assert found.id == gid and found.seed == 4242 and found.settings["seed"] is None


def test_vote_for_missing_generation_is_refused_and_nothing_recorded(store):
    ids = seed_arena(store)
    with pytest.raises(WorkbenchError, match="no generation with id 9999"):
        store.add_vote(ids["base", "Hi?"], 9999, "a", rater="alice")
    with pytest.raises(WorkbenchError, match="no generation"):
        store.add_likert(12345, 3, rater="alice")
    assert len(store.votes()) == 0 and len(store.likert()) == 0


@pytest.mark.parametrize("bad", ["", "   ", "<script>alert(1)</script>", "a" * 65, "-dash-first", "semi;colon"])
def test_bad_rater_names_are_refused_in_one_sentence(store, bad):
    ids = seed_arena(store)
    with pytest.raises(WorkbenchError) as info:
        store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "a", rater=bad)
    if bad.strip():  # an empty name without a session asks for one
        assert "rater name must be 1 to 64" in str(info.value)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_bad_vote_values_are_refused(store):
    ids = seed_arena(store)
    a, b = ids["base", "Hi?"], ids["ck-100", "Hi?"]
    for kwargs, message in [
        ({"winner": "left"}, "winner must be one of"),
        ({"shown_left": "c"}, "shown_left"),
        ({"key": "short"}, "idempotency key"),
        ({"reason": "x" * 3000}, "under 2000"),
    ]:
        with pytest.raises(WorkbenchError, match=message):
            store.add_vote(a, b, kwargs.pop("winner", "a"), rater="alice", **kwargs)
    with pytest.raises(WorkbenchError, match="two different"):
        store.add_vote(a, a, "a", rater="alice")
    with pytest.raises(WorkbenchError, match="same prompt"):
        store.add_vote(a, ids["ck-100", "Name a colour."], "a", rater="alice")
    for score in (0, 6, 2.5, True):
        with pytest.raises(WorkbenchError, match="from 1 to 5"):
            store.add_likert(a, score, rater="alice")


def test_same_key_twice_records_one_vote_and_one_score(store):
    ids = seed_arena(store)
    a, b = ids["base", "Hi?"], ids["ck-100", "Hi?"]
    first = store.add_vote(a, b, "a", rater="alice", key="k-0000000001")
    again = store.add_vote(a, b, "b", rater="alice", key="k-0000000001")  # a double click with a changed mind
    assert first == again and len(store.votes()) == 1 and store.votes().loc[0, "winner"] == "a"
    s1 = store.add_likert(a, 4, rater="alice", key="k-0000000002")
    assert store.add_likert(a, 4, rater="alice", key="k-0000000002") == s1 and len(store.likert()) == 1


def test_anonymous_rater_uses_session(store):
    ids = seed_arena(store)
    store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "tie", rater=None, session="sess-12345678")
    assert store.votes().loc[0, "rater"] == "anon-sess-12345678"
    assert store.rater_progress(None, session="sess-12345678").votes == 1
    with pytest.raises(WorkbenchError, match="session id to rate anonymously"):
        store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "tie", rater=None)


def test_next_pair_serves_each_pair_once_per_rater_with_random_sides(store):
    seed_arena(store)
    store.add_generation("ck-100", "Hi?", "", SETTINGS)  # empty outputs are never served
    store.add_generation("ck-200", "Hi?", "different settings", SETTINGS.replace(temperature=0.1))
    rng, seen, sides = random.Random(0), set(), set()
    progress = store.rater_progress("alice")
    assert (progress.votes, progress.pairs_left) == (0, 6)  # 3 checkpoints -> 3 pairs per prompt, 2 prompts
    while (item := store.next_pair_for("alice", rng=rng)) is not None:
        assert item.a.checkpoint != item.b.checkpoint and item.a.prompt == item.b.prompt and item.a.id < item.b.id
        assert item.a.output and item.b.output and item.a.settings == item.b.settings
        assert {item.left.id, item.right.id} == {item.a.id, item.b.id}
        pair = (item.a.id, item.b.id)
        assert pair not in seen
        seen.add(pair)
        sides.add(item.shown_left)
        store.add_vote(*pair, item.winner_for("left"), rater="alice", shown_left=item.shown_left, key=item.key)
    assert len(seen) == 6 and sides == {"a", "b"}
    assert store.rater_progress("alice").pairs_left == 0 and store.rater_progress("alice").votes == 6
    votes = store.votes()
    # "left" always won, so the winner is whichever generation was on the left
    assert (votes["winner"] == votes["shown_left"]).all()
    # another rater still has every pair, the least-voted first
    assert store.next_pair_for("bob") is not None and store.rater_progress("bob").pairs_left == 6
    only = store.next_pair_for("bob", checkpoints=["base", "ck-200"])
    assert {only.a.checkpoint, only.b.checkpoint} == {"base", "ck-200"}


def test_pair_item_maps_buttons_to_winners(store):
    seed_arena(store)
    item = store.next_pair_for("alice", rng=random.Random(1))
    right = "b" if item.shown_left == "a" else "a"
    assert item.winner_for("left") == item.shown_left and item.winner_for("right") == right
    assert item.winner_for("tie") == "tie" and item.winner_for("bothbad") == "bothbad"
    with pytest.raises(WorkbenchError):
        item.winner_for("A")


def test_likert_flow_and_frames(store):
    ids = seed_arena(store, checkpoints=("base", "ck-1"), prompts=("Hi?",))
    done = []
    while (item := store.next_likert_for("carol", rng=random.Random(2))) is not None:
        store.add_likert(item.generation.id, 5 - len(done), rater="carol", comment="<b>ok</b>", key=item.key)
        done.append(item.generation.id)
    assert sorted(done) == sorted(ids.values())
    frame = store.likert(rater="carol")
    assert list(frame["score"]) == [5, 4] and frame.loc[0, "comment"] == "<b>ok</b>"  # stored as typed
    assert set(frame["model"]) == {"base", "ck-1"}
    assert store.rater_progress("carol").likert == 2 and store.raters() == ["carol"]


def test_battles_are_in_fastchat_form_with_left_as_model_a(store):
    ids = seed_arena(store, prompts=("Hi?",))
    a, b = ids["base", "Hi?"], ids["ck-100", "Hi?"]
    store.add_vote(a, b, "a", rater="alice", shown_left="b")  # base shown right, and won
    store.add_vote(a, b, "bothbad", rater="bob", shown_left="a")
    battles = store.battles()
    first = battles.iloc[0]
    assert (first.model_a, first.model_b, first.winner, first.judge) == ("ck-100", "base", "model_b", "alice")
    assert first.conversation_a[-1] == {"role": "assistant", "content": "ck-100 says hello to Hi?"}
    assert first.conversation_b[0] == {"role": "user", "content": "Hi?"} and first.turn == 1
    assert battles.iloc[1].winner == "tie (bothbad)" and isinstance(first.tstamp, float)


def test_eval_results_examples_and_training_logs(store):
    signature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    rid = store.add_eval_result(
        "tiny-mt",
        "ck-100",
        "bleu",
        21.5,
        step=100,
        signature=signature,
        num_examples=2,
        num_tokens=40,
        settings={"temperature": 0, "seed": 1},
        model_hash="m1",
        dataset_hash="d1",
    )
    store.add_eval_result("tiny-mt", "ck-100", "chrf", 40.0, step=100)
    store.add_eval_result("tiny-mt", "base", "bleu", 10.0, base_model="smol")
    examples = [
        {"prompt": "p", "hypothesis": "h", "references": "r", "score": 3.0, "lang": "de"},
        {"prompt": "q", "hypothesis": "i", "references": ["s", "t"]},
    ]
    assert store.add_eval_examples(rid, examples) == 2
    frame = store.eval_results(suite="tiny-mt", metric="bleu")
    assert list(frame["checkpoint"]) == ["ck-100", "base"] and frame.loc[0, "signature"].startswith("nrefs:1")
    assert frame.loc[0, "settings"]["temperature"] == 0 and frame.loc[1, "base_model"] == "smol"
    examples = store.eval_examples(rid)
    assert list(examples["references"]) == [["r"], ["s", "t"]] and examples.loc[0, "metadata"] == {"lang": "de"}
    with pytest.raises(WorkbenchError, match="finite"):
        store.add_eval_result("tiny-mt", "base", "bleu", float("nan"))
    with pytest.raises(WorkbenchError, match="no evaluation result"):
        store.add_eval_examples(99999, [])

    store.add_training_log("run-a", 10, loss=2.0, learning_rate=1e-4, epoch=0.5, grad_norm=1.5)
    store.add_training_log("run-a", 10, eval_loss=2.2)  # logged separately by the trainer, merged
    store.add_training_log("run-a", 20, loss=float("nan"))
    logs = store.training_logs("run-a")
    assert list(logs["step"]) == [10, 20]
    assert (logs.loc[0, "train_loss"], logs.loc[0, "val_loss"], logs.loc[0, "learning_rate"]) == (2.0, 2.2, 1e-4)
    assert logs.loc[0, "metadata"] == {"grad_norm": 1.5} and logs["train_loss"].isna().iloc[1]
    assert store.training_runs() == ["run-a"]
    with pytest.raises(WorkbenchError, match="training step"):
        store.add_training_log("run-a", -1, loss=1.0)


def test_admin_token_guards_export_import_and_delete(db_url, tmp_path):
    with Store(db_url, admin_token="s3cret") as store:
        ids = seed_arena(store)
        vote = store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "a", rater="alice")
        for action in (
            lambda t: store.export_bytes("votes", "jsonl", token=t),
            lambda t: store.delete_vote(vote, token=t),
            lambda t: store.delete_checkpoint("base", token=t),
            lambda t: store.delete_rater("alice", token=t),
            lambda t: store.import_records("votes", [], token=t),
        ):
            for token in (None, "wrong"):
                with pytest.raises(WorkbenchError, match="admin token"):
                    action(token)
        assert len(store.votes()) == 1
        assert store.export_bytes("votes", "jsonl", token="s3cret").count(b"\n") == 1
        store.delete_vote(vote, token="s3cret")
        assert store.delete_checkpoint("base", token="s3cret") == 2
        assert "base" not in set(store.checkpoints()["name"])


def test_delete_generation_removes_its_ratings(store):
    ids = seed_arena(store)
    a, b = ids["base", "Hi?"], ids["ck-100", "Hi?"]
    store.add_vote(a, b, "a", rater="alice")
    store.add_likert(a, 3, rater="alice")
    store.delete_generation(a)
    assert len(store.votes()) == 0 and len(store.likert()) == 0
    with pytest.raises(WorkbenchError):
        store.get_generation(a)


def test_prompt_sets(store):
    sid = store.add_prompt_set("greetings", ["Hi?", {"text": "Bonjour?", "reference": "Hello?"}], description="two")
    assert store.prompt_sets() == [{"id": sid, "name": "greetings", "description": "two", "size": 2}]
    prompts = store.prompts("greetings")
    assert [p["text"] for p in prompts] == ["Hi?", "Bonjour?"] and prompts[1]["reference"] == "Hello?"
    store.add_generation("base", "Bonjour?", "Salut", SETTINGS, prompt_id=prompts[1]["id"])
    assert list(store.generations(prompt_set="greetings")["output"]) == ["Salut"]
    with pytest.raises(WorkbenchError, match="already exists"):
        store.add_prompt_set("greetings", ["x"])
    with pytest.raises(WorkbenchError, match="Prompt 1"):
        store.add_prompt_set("empty", [""])
    store.delete_prompt_set("greetings")
    assert store.prompt_sets() == [] and len(store.generations()) == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_import_round_trip_into_another_store(store, tmp_path, fmt):
    ids = seed_arena(store)
    store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "b", rater="alice", shown_left="b", reason='says "hi", ok')
    store.add_vote(ids["base", "Hi?"], ids["ck-200", "Hi?"], "tie", rater="bob")
    store.add_likert(ids["ck-200", "Hi?"], 2, rater="bob", comment="meh")
    for what in ("generations", "votes", "likert", "battles", "preferences"):
        assert store.export(what, fmt, tmp_path / f"{what}.{fmt}") >= 1
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        with pytest.raises(
            WorkbenchError, match=f"Line {1 if fmt == 'jsonl' else 2}: generation .* import the generations first"
        ):
            copy.import_file("votes", tmp_path / f"votes.{fmt}")
        assert copy.import_file("generations", tmp_path / f"generations.{fmt}") == len(ids)
        assert copy.import_file("votes", tmp_path / f"votes.{fmt}") == 2
        assert copy.import_file("likert", tmp_path / f"likert.{fmt}") == 1
        assert copy.import_file("votes", tmp_path / f"votes.{fmt}") == 0  # a second import adds nothing
        assert copy.import_file("generations", tmp_path / f"generations.{fmt}") == 0
        cols = ["model_a", "model_b", "winner", "shown_left", "rater", "reason", "tstamp", "output_a"]
        assert copy.votes()[cols].to_dict("records") == store.votes()[cols].to_dict("records")
        assert copy.likert()[["model", "score", "comment"]].to_dict("records") == [
            {"model": "ck-200", "score": 2, "comment": "meh"}
        ]
        original = store.find_generation("Hi?", "base", SETTINGS)
        assert copy.find_generation("Hi?", "base", SETTINGS).uid == original.uid


def test_preferences_are_trl_conversational_pairs(store, tmp_path):
    ids = seed_arena(store, prompts=("Hi?",))
    store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "b", rater="alice")
    store.add_vote(ids["base", "Hi?"], ids["ck-200", "Hi?"], "tie", rater="alice")  # not a preference
    lines = store.export_bytes("preferences", "jsonl").decode().splitlines()
    assert len(lines) == 1
    pair = json.loads(lines[0])
    assert set(pair) == {"prompt", "chosen", "rejected", "source"} and pair["source"] == "arena"
    assert pair["prompt"] == [{"role": "user", "content": "Hi?"}]
    assert pair["chosen"] == [{"role": "assistant", "content": "ck-100 says hello to Hi?"}]
    assert pair["rejected"] == [{"role": "assistant", "content": "base says hello to Hi?"}]


def test_bad_import_file_names_the_line(store, tmp_path):
    bad = tmp_path / "votes.jsonl"
    bad.write_text('{"generation_a_uid": "x"}\n\n{not json\n')
    with pytest.raises(WorkbenchError, match="Line 1: a field is missing"):
        store.import_file("votes", bad)
    bad.write_text("\n{not json\n")
    with pytest.raises(WorkbenchError, match=r"Line 2 of votes\.jsonl is not valid JSON"):
        store.import_file("votes", bad)
    with pytest.raises(WorkbenchError, match="Import one of"):
        store.import_file("battles", bad)


def test_schema_of_migrations_matches_the_models(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from workbench.store.schema import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert store_db.current_revision(store.engine) == store_db.head_revision()


def test_old_database_is_upgraded_in_place_with_rows_kept(db_url):
    engine = store_db.make_engine(db_url)
    store_db.migrate(engine, "0001")  # a database made by the first release
    assert store_db.current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO checkpoints (id, name, created_at) VALUES (1, 'old-ck', 1.0)"))
        msgs = json.dumps([{"role": "user", "content": "Hi"}])
        for gid, out in ((1, "Hello"), (2, "Hey")):
            conn.execute(
                text(
                    "INSERT INTO generations (id, uid, checkpoint_id, prompt, messages, prompt_hash, settings,"
                    " settings_hash, output, created_at) VALUES (:id, :uid, 1, 'Hi', :msgs, 'h', '{}', 's', :out, 1.0)"
                ),
                {"id": gid, "uid": f"u{gid}", "msgs": msgs, "out": out},
            )
        conn.execute(
            text(
                "INSERT INTO votes (generation_a_id, generation_b_id, shown_left, winner, rater, created_at)"
                " VALUES (1, 2, 'a', 'a', 'alice', 2.0)"
            )
        )
    engine.dispose()
    with Store(db_url) as store:  # opening upgrades
        assert store_db.current_revision(store.engine) == store_db.head_revision() != "0001"
        assert store.votes()[["rater", "winner", "output_a"]].to_dict("records") == [
            {"rater": "alice", "winner": "a", "output_a": "Hello"}
        ]
        store.add_training_log("new-table", 1, loss=1.0)  # a table the upgrade added
        assert len(store.training_logs("new-table")) == 1


def test_database_at_0002_gains_the_backend_column_and_old_rows_read_as_unknown(db_url):
    from sqlalchemy import inspect

    engine = store_db.make_engine(db_url)
    store_db.migrate(engine, "0002")  # a database made before backends were recorded
    assert "backend" not in {c["name"] for c in inspect(engine).get_columns("generations")}
    with engine.begin() as conn:  # no explicit ids: PostgreSQL's sequences must stay in step for later inserts
        conn.execute(text("INSERT INTO checkpoints (name, created_at) VALUES ('old-ck', 1.0)"))
        conn.execute(
            text(
                "INSERT INTO generations (uid, checkpoint_id, prompt, messages, prompt_hash, settings, settings_hash,"
                " output, created_at) SELECT 'u1', id, 'Hi', :msgs, 'h', '{}', 's', 'Hello', 1.0 FROM checkpoints"
            ),
            {"msgs": json.dumps([{"role": "user", "content": "Hi"}])},
        )
        conn.execute(
            text(
                "INSERT INTO likert (generation_id, score, rater, created_at) SELECT id, 4, 'bob', 2.0 FROM generations"
            )
        )
    engine.dispose()
    with Store(db_url) as store:  # opening upgrades
        assert store_db.current_revision(store.engine) == store_db.head_revision()
        column = {c["name"]: c for c in inspect(store.engine).get_columns("generations")}["backend"]
        assert column["nullable"] and column["type"].length == 32
        old = store.get_generation(int(store.generations()["id"].iloc[0]))
        assert (old.uid, old.output, old.backend) == ("u1", "Hello", None)
        assert cells(store.generations(), ["backend"]) == [[None]]
        assert cells(store.likert(), ["rater", "score", "backend"]) == [["bob", 4, None]]
        new = store.add_generation("old-ck", "Hi again", "Hey", None, stats={"backend": "llamacpp"})
        assert store.get_generation(new).backend == "llamacpp"


def test_default_store_is_sqlite_under_home_var_in_wal_mode(tmp_path):
    settings = Settings(home=tmp_path)
    with Store.open(settings) as store:
        store.add_generation("base", "Hi", "Hello", None)
    path = tmp_path / "var" / "workbench.db"
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Store.open(Settings.from_env({"WORKBENCH_HOME": str(tmp_path)})).generations()["output"].tolist() == [
        "Hello"
    ]


def test_in_memory_store_is_shared_by_threads():
    import threading

    with Store("sqlite://") as store:
        gid = store.add_generation("base", "Hi", "Hello", None)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(store.get_generation(gid).output))
        thread.start()
        thread.join()
        assert seen == ["Hello"]


def test_bad_url_is_one_sentence():
    with pytest.raises(WorkbenchError, match="not a valid SQLAlchemy URL"):
        Store("not a url")
    with pytest.raises(WorkbenchError, match="No database driver"):
        Store("nosuchdb://x/y")


def test_settings_label_filters_votes_by_settings(store):
    from workbench.store import settings_label

    ids = seed_arena(store, prompts=("Hi?",))
    greedy = {ck: store.add_generation(ck, "Hi?", "same", {"temperature": 0}) for ck in ("base", "ck-100")}
    store.add_vote(ids["base", "Hi?"], ids["ck-100", "Hi?"], "a", rater="alice")
    store.add_vote(greedy["base"], greedy["ck-100"], "tie", rater="alice")
    votes = store.votes()
    labels = votes["settings_a"].map(settings_label)
    assert labels.nunique() == 2
    greedy_votes = votes[labels == settings_label(GenerationSettings(temperature=0))]
    assert list(greedy_votes["winner"]) == ["tie"]
    rep = f"rep {SETTINGS.repetition_penalty:g}"  # the default penalty
    assert settings_label(SETTINGS) == f"temp 0.7 · top-p 0.9 · top-k 50 · max 256 · {rep} · seed 11"
