"""Votes that survive a restart: the folder huggingface_hub's CommitScheduler pushes, and reading it back.

Run: .venv/bin/python -m pytest -q tests/store/test_sync.py
The hub cannot be reached from here, so the push itself is huggingface_hub's; what is tested is ours: the files
(contents, no secrets, nothing half-written, one new file per table and push), a restart into an empty store that
reads them back, a second restart that adds nothing, and the real CommitScheduler built on that folder with the
right dataset and pushing exactly those files (its `HfApi` replaced by a recorder: the network is the only fake).
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.access import voter_id
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.store import Store, anonymous_rater, sync

TOKEN, ADMIN = "hf_secret_token_for_tests", "admin-secret-for-tests"
ADDRESS = "10.20.30.40"
SECRET = b"0123456789abcdef" * 4  # a voter-id key, as access.voter_secret makes them


def fill(store: Store) -> None:
    """What a Space collects: an Arena vote with a reason, a chat like, a regenerate pair and a correction, a Likert
    score."""
    voter = voter_id(ADDRESS, SECRET)
    a = store.add_generation("base", "Hi?", "Hello.", None, origin="battle")
    b = store.add_generation("base", "Hi?", "Hey!", {"temperature": 1.2}, origin="battle")
    store.add_vote(a, b, "b", rater=None, session=voter, reason="warmer", key="battle-key-0001")
    old = store.add_generation("base", "Name a colour.", "Red.", None, origin="chat")
    new = store.add_generation("base", "Name a colour.", "Teal.", None, origin="chat")
    store.add_feedback("preferred", new, other=old, rater=None, session=voter)
    store.add_feedback("like", new, rater=None, session=voter)
    store.add_correction(old, "Blue.", rater=None, session=voter)
    store.add_likert(a, 4, rater="alice")
    store.drop_rater("alice")  # the owner drops a rater, takes it back, and drops the visitor
    store.undrop_rater("alice")
    store.drop_rater(anonymous_rater(voter), reason="steering")


def read_folder(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for table in sync.TABLES:
        files = sorted((folder / table).glob("*.jsonl")) if (folder / table).is_dir() else []
        out[table] = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    return out


def test_the_outbox_holds_every_row_once_without_secrets(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'space.db'}") as store:
        fill(store)
        outbox = sync.Outbox(store, tmp_path / "outbox")
        assert outbox.write_new() == {
            "generations": 4,
            "votes": 1,
            "likert": 1,
            "feedback": 2,
            "corrections": 1,
            "rater_status": 3,
        }
        assert outbox.write_new() == dict.fromkeys(sync.TABLES, 0)  # nothing new
        store.add_vote(
            store.add_generation("base", "Bye?", "Bye.", None),
            store.add_generation("run", "Bye?", "Ciao.", None),
            "a",
            rater="bob",
        )
        assert outbox.write_new() == {
            "generations": 2,
            "votes": 1,
            "likert": 0,
            "feedback": 0,
            "corrections": 0,
            "rater_status": 0,
        }
    files = sorted(
        p.relative_to(tmp_path / "outbox").as_posix() for p in (tmp_path / "outbox").rglob("*") if p.is_file()
    )
    tables = ["corrections", "feedback", "generations", "generations", "likert", "rater_status", "votes", "votes"]
    assert [f.split("/")[0] for f in files] == tables
    assert not [f for f in files if "/." in f or not f.endswith(".jsonl")]  # no temporary file left behind
    rows = read_folder(tmp_path / "outbox")
    assert [v["reason"] for v in rows["votes"]] == ["warmer", None] and all(
        v["source"] == "arena" for v in rows["votes"]
    )
    assert [f["kind"] for f in rows["feedback"]] == ["preferred", "like"]
    assert {g["origin"] for g in rows["generations"]} == {"battle", "chat", None}
    text = "".join(p.read_text() for p in (tmp_path / "outbox").rglob("*.jsonl"))
    for secret in (TOKEN, ADMIN, ADDRESS, voter_id(ADDRESS, SECRET)):
        assert secret not in text  # no token, no address, not even the voter id (only the anonymous name)
    assert '"session"' not in text


def test_a_restart_reads_the_folder_back_into_an_empty_store_and_a_second_adds_nothing(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'before.db'}") as store:
        fill(store)
        sync.Outbox(store, tmp_path / "dataset").write_new()
        before = {what: store.export_records(what, source="arena")[0] for what in ("votes", "feedback", "likert")}
    (tmp_path / "dataset" / "votes" / "broken.jsonl").write_text("{not json\n")  # a damaged file is skipped
    with Store(f"sqlite:///{tmp_path / 'after.db'}") as fresh:  # the Space restarted: an empty store
        assert sync.load_folder(fresh, tmp_path / "dataset") == {
            "generations": 4,
            "votes": 1,
            "likert": 1,
            "feedback": 2,
            "corrections": 1,
            "rater_status": 3,
        }
        assert sync.load_folder(fresh, tmp_path / "dataset") == dict.fromkeys(sync.TABLES, 0)  # a second start
        after = {what: fresh.export_records(what, source="arena")[0] for what in ("votes", "feedback", "likert")}
        assert [v["reason"] for v in after["votes"]] == ["warmer"] and after["votes"][0]["rater"] == before["votes"][0][
            "rater"
        ]
        assert [f["kind"] for f in after["feedback"]] == ["preferred", "like"]
        assert [(c["original"], c["corrected"]) for c in fresh.correction_rows()] == [("Red.", "Blue.")]
        assert fresh.reaction_counts().to_dict("records") == [{"model": "base", "likes": 1, "dislikes": 0}]
        assert after["likert"][0]["score"] == 4
        assert fresh.dropped_raters() == {anonymous_rater(voter_id(ADDRESS, SECRET)): "steering"}  # as it was
        # One ballot per visitor still holds: the restored vote is theirs, and a repeat is not a second one.
        pair = fresh.votes().iloc[0]
        again = fresh.add_vote(int(pair["generation_a_id"]), int(pair["generation_b_id"]), "a", rater=pair["rater"])
        assert again == int(pair["id"]) and len(fresh.votes()) == 1
        # What came from the dataset is not written to it again.
        outbox = sync.Outbox(fresh, tmp_path / "outbox", known=sync.identities(tmp_path / "dataset"))
        assert outbox.write_new() == dict.fromkeys(sync.TABLES, 0)


def not_found(repo_id: str) -> Exception:
    """The error HfApi raises for a dataset that does not exist (the hub's 404 answer)."""
    import httpx
    from huggingface_hub.errors import RepositoryNotFoundError

    url = f"https://huggingface.co/api/datasets/{repo_id}"
    return RepositoryNotFoundError(f"404 {repo_id}", response=httpx.Response(404, request=httpx.Request("GET", url)))


class RecordingApi:
    """HfApi's calls the scheduler and the restore make, recorded instead of sent (the hub is not reachable)."""

    def __init__(self, dataset: Path | None = None, private: bool | None = None) -> None:
        """`private`: the visibility `repo_info` reports for an existing dataset (None: it does not exist yet)."""
        self.dataset, self.repos, self.commits, self.private = dataset, [], [], private

    def repo_info(self, repo_id, *, repo_type=None):
        if self.private is None:
            raise not_found(repo_id)
        return SimpleNamespace(id=repo_id, private=self.private)

    def create_repo(self, repo_id, private=None, repo_type=None, exist_ok=False):
        self.repos.append({"repo_id": repo_id, "private": private, "repo_type": repo_type})
        return SimpleNamespace(repo_id=repo_id)

    def run_as_future(self, fn, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future

    def create_commit(self, *, repo_id, repo_type, operations, commit_message, revision):
        self.commits.append(
            {
                "repo_id": repo_id,
                "repo_type": repo_type,
                "files": {o.path_in_repo: o.path_or_fileobj.read() for o in operations},
            }
        )
        return SimpleNamespace(oid="c0ffee")

    def snapshot_download(self, *, repo_id, repo_type, local_dir, allow_patterns):
        if self.dataset is None:
            raise not_found(repo_id)
        shutil.copytree(self.dataset, local_dir, dirs_exist_ok=True)
        return str(local_dir)


def test_start_restores_the_dataset_and_the_scheduler_pushes_the_new_rows(tmp_path):
    assert sync.start(Settings(home=tmp_path)) is None  # no dataset named: nothing is constructed
    assert sync.start(Settings(home=tmp_path, sync_dataset="me/votes")) is None  # no token
    with Store(f"sqlite:///{tmp_path / 'old.db'}") as old:
        fill(old)
        sync.Outbox(old, tmp_path / "remote").write_new()  # what an earlier run pushed
    settings = Settings(home=tmp_path / "space", sync_dataset="me/votes", hf_token=TOKEN, sync_every=60)
    api = RecordingApi(tmp_path / "remote")
    scheduler = sync.start(settings, api=api)
    try:
        assert api.repos == [{"repo_id": "me/votes", "private": True, "repo_type": "dataset"}]
        assert scheduler.folder_path == settings.sync_dir / "outbox" and scheduler.every == 1
        with Store(settings.db_url) as store:
            assert len(store.votes()) == 1 and len(store.feedback_rows()) == 2  # restored before the app listens
            gen = store.add_generation("base", "New?", "Yes.", None)
            store.add_likert(gen, 5, rater="carol")
        scheduler.trigger().result()
        pushed = api.commits[-1]["files"]
        assert sorted(path.split("/")[0] for path in pushed) == ["generations", "likert"]  # only what is new
        assert all(
            api_commit["repo_id"] == "me/votes" and api_commit["repo_type"] == "dataset" for api_commit in api.commits
        )
        assert b"Yes." in b"".join(pushed.values()) and TOKEN.encode() not in b"".join(pushed.values())
    finally:
        scheduler.stop()


def test_the_owner_is_told_whether_votes_survive_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.config.SPACE_DATA", tmp_path / "no-data")
    space = Settings(home=tmp_path, space=True)
    assert not space.store_survives_restart and "will not survive a restart" in sync.persistence_note(space)
    assert "WORKBENCH_SYNC_DATASET" in sync.persistence_note(space)
    synced = Settings(home=tmp_path, space=True, sync_dataset="me/votes", hf_token=TOKEN, sync_every=300)
    assert sync.persistence_note(synced).startswith("Votes, generations and feedback are pushed to the dataset")
    assert "every 5 minutes" in sync.persistence_note(synced) and TOKEN not in sync.persistence_note(synced)
    assert "HF_TOKEN is not" in sync.persistence_note(Settings(home=tmp_path, space=True, sync_dataset="me/votes"))
    assert sync.persistence_note(Settings(home=tmp_path)) == ""  # a laptop's store survives
    with pytest.raises(Exception, match="dataset id like user/name"):
        Settings(sync_dataset="not a dataset")


def test_a_dataset_that_cannot_be_reached_leaves_the_app_serving_and_says_so(tmp_path):
    class Unreachable(RecordingApi):
        def create_repo(self, **kwargs):
            raise OSError(f"401 Unauthorized for token {TOKEN}")

    settings = Settings(home=tmp_path, sync_dataset="me/unreachable", hf_token=TOKEN)
    assert sync.start(settings, api=Unreachable()) is None
    note = sync.persistence_note(settings)
    assert note.startswith("**Votes are not synced:** the dataset me/unreachable was not used when the app started")
    assert "401 Unauthorized" in note and TOKEN not in note  # the reason, with the secret masked
    assert "me/unreachable" not in sync.persistence_note(settings, owner=False)  # the dataset's id is the owner's


@pytest.mark.parametrize(
    ("private", "allowed", "synced"),
    [(False, False, False), (False, True, True), (True, False, True), (None, False, True)],
    ids=["public-refused", "public-allowed", "private", "new"],
)
def test_a_public_dataset_is_refused_unless_the_owner_says_so(tmp_path, private, allowed, synced):
    name = f"me/votes-{'public' if private is False else 'private' if private else 'new'}-{int(allowed)}"
    settings = Settings(home=tmp_path, sync_dataset=name, hf_token=TOKEN, sync_public=allowed)
    api = RecordingApi(tmp_path / "remote", private=private)
    scheduler = sync.start(settings, api=api)
    try:
        assert (scheduler is not None) == synced
        note = sync.persistence_note(settings)
        if synced:
            assert api.repos == [{"repo_id": name, "private": True, "repo_type": "dataset"}]
            assert note.startswith("Votes, generations and feedback are pushed to the dataset")
        else:  # nothing was read from it, created, or pushed to it
            assert api.repos == [] and api.commits == [] and not (settings.sync_dir / "outbox").exists()
            assert "it is public" in note and "WORKBENCH_SYNC_PUBLIC=1" in note and name in note
        assert name not in sync.persistence_note(settings, owner=False)
    finally:
        if scheduler is not None:
            scheduler.stop()


def test_voter_ids_survive_a_restart_with_the_key_from_a_secret_or_the_owner_is_told(tmp_path, monkeypatch):
    from workbench.access import voter_secret

    monkeypatch.setattr("workbench.config.SPACE_DATA", tmp_path / "data")
    key = "k" * 40
    space = {"space": True, "sync_dataset": "me/votes", "hf_token": TOKEN}
    first = Settings(home=tmp_path / "run-1", **space, voter_key=key)
    again = Settings(home=tmp_path / "run-2", **space, voter_key=key)  # a restart: a new, empty app folder
    assert voter_id(ADDRESS, first.voter_secret()) == voter_id(ADDRESS, again.voter_secret())
    assert not (first.secrets_dir / "voter-id.key").exists()  # the key is the secret, no file is made
    assert sync.voter_note(first) == "" and "Voter ids" not in sync.persistence_note(first)
    keyless = [Settings(home=tmp_path / f"run-{k}", **space) for k in (3, 4)]
    assert voter_id(ADDRESS, keyless[0].voter_secret()) != voter_id(ADDRESS, keyless[1].voter_secret())
    note = sync.persistence_note(keyless[0])
    assert "**Voter ids change at a restart:**" in note and "WORKBENCH_VOTER_KEY" in note
    assert "Voter ids" not in sync.persistence_note(keyless[0], owner=False)  # the owner's word, not the visitors'
    (tmp_path / "data").mkdir()
    kept = Settings(home=tmp_path / "run-5", space=True, sync_dataset="me/votes", hf_token=TOKEN)
    assert kept.secrets_dir == tmp_path / "data" / "workbench" and sync.voter_note(kept) == ""  # /data survives
    assert voter_secret(tmp_path, key) == key.encode()
    with pytest.raises(WorkbenchError, match=r"WORKBENCH_VOTER_KEY\) must be at least 32 characters"):
        Settings(voter_key="short")
