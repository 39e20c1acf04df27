"""Corrections (chat replies a person edited) in the store, on SQLite and on a real PostgreSQL, and what they become:
SFT lines and preference pairs in the export, and training data under the DPO-from-votes filters.

Run: .venv/bin/python -m pytest -q tests/store/test_corrections.py
Covers: a correction kept with its reply and conversation across reopening the store, each rater's newest
correction counting, refusals in one sentence with nothing stored, the `corrections` export (SFT in chat form) and
`preferences --source edit` (the correction chosen, the model's reply rejected), the files reading back as a
dataset and as pairs and importing into another store, DPO pairs and SFT examples from corrections with the
checkpoint and rater filters (`workbench train --from-corrections`, `--vote-source edit`), and a database at
revision 0006 upgraded with its rows kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.store import db as store_db
from workbench.training.corrections import write_corrections_sft
from workbench.training.votes import VoteFilters, correction_examples, describe, vote_pairs, write_vote_pairs

VOTER = "voter-0123456789abcdef"
ASKED = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def store(db_url):
    with Store(db_url) as s:
        yield s


def test_a_correction_is_kept_with_its_reply_and_conversation(db_url):
    with Store(db_url) as store:
        gid = store.add_generation("base", ASKED, "Lyon.", None, origin="chat")
        first = store.add_correction(gid, "Paris.", rater=None, session=VOTER, key="edit-key-0001")
        assert store.add_correction(gid, "Paris.", rater=None, session=VOTER, key="edit-key-0001") == first
        store.add_correction(gid, "Paris is the capital.", rater=None, session=VOTER)  # edited again: newest counts
        store.add_correction(gid, "It is Paris.", rater="alice")
    with Store(db_url) as store:  # durable: read back from a new connection
        rows = store.correction_rows()
        assert [(r["corrected"], r["rater"]) for r in rows] == [
            ("Paris is the capital.", f"anon-{VOTER[:16]}"),
            ("It is Paris.", "alice"),
        ]
        assert all(r["original"] == "Lyon." and r["messages"] == ASKED and r["model"] == "base" for r in rows)
        assert rows[0]["origin"] == "chat" and rows[0]["session"] == VOTER
        assert len(store.correction_rows(current=False)) == 3


def test_refusals_say_why_in_one_sentence_and_keep_nothing(store):
    gid = store.add_generation("base", ASKED, "Lyon.", None, origin="chat")
    for text, why in (
        ("  ", "corrected text; it is empty"),
        (" Lyon. ", "same as the model's"),
        (None, "corrected text; it is empty"),
    ):
        with pytest.raises(WorkbenchError, match=why):
            store.add_correction(gid, text, rater=None, session=VOTER)
    with pytest.raises(WorkbenchError, match="no generation with id 999"):
        store.add_correction(999, "Paris.", rater=None, session=VOTER)
    with pytest.raises(WorkbenchError, match="rater name, or a session id"):
        store.add_correction(gid, "Paris.", rater=None)
    assert store.correction_rows(current=False) == []


def corrected(store: Store) -> dict[str, int]:
    """Two chat replies corrected (one by a person, one by an LLM judge) and one Arena vote."""
    ids = {
        "base": store.add_generation("base", ASKED, "Lyon.", None, origin="chat"),
        "run": store.add_generation("run", [{"role": "user", "content": "2+2?"}], "5", None, origin="chat"),
        "a": store.add_generation("base", "Hi?", "Hello.", None),
        "b": store.add_generation("run", "Hi?", "Hey.", None),
    }
    store.add_correction(ids["base"], "Paris.", rater=None, session=VOTER)
    store.add_correction(ids["run"], "4", rater="judge:big-model")
    store.add_vote(ids["a"], ids["b"], "b", rater="alice")
    return ids


def test_corrections_export_as_sft_lines_and_as_pairs(store, tmp_path):
    corrected(store)
    n = store.export("corrections", "jsonl", tmp_path / "sft.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert n == 2 and lines[0]["messages"] == [*ASKED, {"role": "assistant", "content": "Paris."}]
    assert lines[0]["model"] == "base" and lines[0]["rater"] == f"anon-{VOTER[:16]}" and lines[0]["generation_uid"]
    edits, _ = store.export_records("preferences", source="edit")
    assert edits[0] == {
        "prompt": ASKED,
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Lyon."}],
        "source": "edit",
    }
    assert [p["source"] for p in store.export_records("preferences")[0]] == ["arena", "edit", "edit"]
    assert [p["source"] for p in store.export_records("preferences", source="arena")[0]] == ["arena"]
    assert store.export_records("votes", source="edit")[0] == []  # a correction is no vote between two outputs
    csv_text = store.export_bytes("corrections", "csv").decode()
    assert csv_text.splitlines()[0] == "messages,model,generation_uid,rater,tstamp,key" and "Paris." in csv_text

    # the files are what training reads: a chat-form dataset and TRL preference pairs
    from workbench.training.data import read_dataset
    from workbench.training.preferences import to_pair

    report = read_dataset(tmp_path / "sft.jsonl")
    assert report.shape == "chat" and [e.messages[-1]["content"] for e in report.examples] == ["Paris.", "4"]
    assert to_pair(edits[0], 1) == (ASKED, "Paris.", "Lyon.")

    store.export("generations", "jsonl", tmp_path / "generations.jsonl")
    with Store(f"sqlite:///{tmp_path / 'copy.db'}") as copy:  # imports into another store, twice adds nothing
        copy.import_file("generations", tmp_path / "generations.jsonl")
        assert [copy.import_file("corrections", tmp_path / "sft.jsonl") for _ in range(2)] == [2, 0]
        assert copy.export_records("preferences", source="edit")[0] == edits


def test_corrections_train_as_dpo_pairs_and_sft_under_the_vote_filters(store, tmp_path):
    corrected(store)
    settings = Settings(home=tmp_path)
    pairs, counts = vote_pairs(store, settings, VoteFilters(source="edit"))
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [("Paris.", "Lyon.")]
    assert counts == {"corrections": 2, "filtered_out": 1, "pairs": 1}  # the judge's correction: people's only
    assert describe(counts) == "0 votes and 2 corrections -> 1 preference pairs (dropped: 1 filtered out)."
    every = vote_pairs(store, settings, VoteFilters(source="all", rater_kind="all"))[1]
    assert every["votes"] == 1 and every["corrections"] == 2 and every["pairs"] == 3
    assert vote_pairs(store, settings, VoteFilters(source="arena"))[1].get("corrections") is None
    only_run = VoteFilters(source="edit", checkpoints=("run",), rater_kind="judges")
    assert [p["rejected_checkpoint"] for p in vote_pairs(store, settings, only_run)[0]] == ["run"]
    assert vote_pairs(store, settings, VoteFilters(source="edit", raters=("bob",)))[1]["pairs"] == 0
    with pytest.raises(WorkbenchError, match="Too few usable pairs: 0 votes and 2 corrections"):
        write_vote_pairs(store, settings, VoteFilters(source="edit"), tmp_path / "pairs.jsonl")

    sft, counts = correction_examples(store, settings, VoteFilters(rater_kind="all"), "sft")
    assert [e["messages"][-1]["content"] for e in sft] == ["Paris.", "4"] and counts["examples"] == 2
    path = tmp_path / "corrections.jsonl"
    assert write_corrections_sft(store, settings, VoteFilters(), path) == {
        "corrections": 2,
        "filtered_out": 1,
        "examples": 1,
    }
    assert json.loads(path.read_text())["messages"][-1] == {"role": "assistant", "content": "Paris."}
    with pytest.raises(WorkbenchError, match=r"No corrections to train on \(2 in the store, 2 filtered out\)"):
        write_corrections_sft(store, settings, VoteFilters(checkpoints=("other",)), tmp_path / "none.jsonl")
    assert not (tmp_path / "none.jsonl").exists()


def test_database_at_0006_gains_corrections_with_rows_kept(db_url):
    from sqlalchemy import inspect, text

    engine = store_db.make_engine(db_url)
    store_db.migrate(engine, "0007")  # a database made before corrections
    assert "corrections" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO checkpoints (name, created_at) VALUES ('old-ck', 1.0)"))
        conn.execute(
            text(
                "INSERT INTO generations (uid, checkpoint_id, prompt, messages, prompt_hash, settings, settings_hash,"
                " output, created_at, origin) SELECT 'u1', id, 'Hi', :msgs, 'h', '{}', 's', 'Hello', 1.0, 'chat'"
                " FROM checkpoints"
            ),
            {"msgs": json.dumps([{"role": "user", "content": "Hi"}])},
        )
    engine.dispose()
    with Store(db_url) as store:  # opening upgrades
        assert store_db.current_revision(store.engine) == store_db.head_revision()
        gid = int(store.generations()["id"].iloc[0])
        store.add_correction(gid, "Hello there.", rater="alice")
        assert [(r["generation_uid"], r["corrected"]) for r in store.correction_rows()] == [("u1", "Hello there.")]


def test_workbench_train_from_corrections_writes_the_runs_sft_file(tmp_path):
    from workbench.cli import build_parser
    from workbench.cli.train import job_config

    settings = Settings(home=tmp_path)
    parse = build_parser().parse_args
    with pytest.raises(WorkbenchError, match=r"No corrections to train on \(0 in the store"):
        job_config(parse(["train", "--name", "fixes", "--from-corrections"]), settings)
    with Store.open(settings) as store:
        corrected(store)
    with pytest.raises(WorkbenchError, match="--from-corrections trains SFT"):
        job_config(parse(["train", "--name", "fixes", "--from-corrections", "--method", "dpo"]), settings)
    config = job_config(parse(["train", "--name", "fixes", "--from-corrections", "--vote-raters", "all"]), settings)
    assert config.method == "sft" and config.data == str(settings.var_dir / "corrections" / "fixes.jsonl")
    lines = [json.loads(line) for line in Path(config.data).read_text(encoding="utf-8").splitlines()]
    assert [line["messages"][-1]["content"] for line in lines] == ["Paris.", "4"]
    with pytest.raises(WorkbenchError, match=r"1 votes and 2 corrections -> 2 preference pairs .* needs 4"):
        job_config(parse(["train", "--name", "prefs", "--from-votes", "--vote-source", "all"]), settings)


def test_the_finetune_tab_trains_on_corrections_through_the_clis_source(tmp_path):
    """The tab's "train on the store's feedback" with sft writes the file `--from-corrections` writes; with dpo and
    source edit it counts the correction pairs (one declaration of the sources, `training.sources`)."""
    from types import SimpleNamespace

    from workbench.ui.finetune_actions import _store_data

    settings = Settings(home=tmp_path)
    with Store.open(settings) as store:
        corrected(store)
    ctx = SimpleNamespace(settings=settings)  # the tab's context: only its settings are read here
    tab = {"vote_rater_kind": "all", "vote_min_agreement": 0.5, "vote_since": "", "vote_checkpoints": []}
    path, record, sentence = _store_data(ctx, "fixes", True, "sft", tab)  # the pairs' own filter is left out
    assert (
        path == str(settings.var_dir / "corrections" / "fixes.jsonl") and sentence == "2 corrections -> 2 SFT examples."
    )
    assert [json.loads(line)["messages"][-1]["content"] for line in Path(path).read_text().splitlines()] == [
        "Paris.",
        "4",
    ]
    assert record["filters"]["rater_kind"] == "all" and "min_agreement" not in record["filters"]
    counted = _store_data(ctx, "x", False, "dpo", {**tab, "vote_source": "edit", "vote_origin": "chat"})[2]
    assert counted == "0 votes and 2 corrections -> 2 preference pairs."
    with pytest.raises(WorkbenchError, match="The since date must be a date such as 2026-12-01, not 'soon'"):
        _store_data(ctx, "x", False, "sft", {"vote_since": "soon"})
