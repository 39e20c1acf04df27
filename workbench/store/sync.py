"""Votes that survive a restart: the store's rows written as JSONL into a folder that `huggingface_hub`'s
`CommitScheduler` pushes to a dataset, and read back into the store when the app starts.

A free Hugging Face Space has no persistent disk: the SQLite store inside the app's folder is gone at every
restart. With `WORKBENCH_SYNC_DATASET=user/name` and `HF_TOKEN`, `start(settings)` (called by `app.py` before it
launches) downloads the dataset's files, imports them (generations, then votes, Likert scores, chat feedback,
corrections and the owner's drops of raters; rows are matched by uid and key, so a file read twice adds nothing),
and starts a scheduler that, every
`WORKBENCH_SYNC_EVERY` seconds, first writes each row the dataset lacks into a new file of the outbox and then
lets `CommitScheduler` push what changed. The folders, under `var/sync/`:

    outbox/votes/20261123T101500123456Z-1f2e3d4c.jsonl   one new file per table and push, written atomically
    restored/...                                     the dataset as downloaded at start

    outbox = Outbox(store, folder); outbox.write_new()    # {"generations": 2, "votes": 1, ...}
    load_folder(store, folder)                            # {"generations": 2, "votes": 1, ...} rows added

What goes out: each row as `python -m workbench export` writes it, without the visitor's session id (the rater's
anonymous name is kept, so one ballot per visitor still holds after a restore); no token, no address. A file is
written to a hidden temporary name and renamed under the scheduler's lock, so a push never reads half a file.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import CommitScheduler

from workbench.errors import WorkbenchError
from workbench.store.export import read_records, sync_identity

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.store import Store

log = logging.getLogger(__name__)
# The order rows are imported in: ratings need outputs; the owner's drops come last, after the votes they name.
TABLES = ("generations", "votes", "likert", "feedback", "corrections", "rater_status")
PRIVATE = ("session",)  # never leaves the store: the visitor's voter id


_FAILED: dict[str, str] = {}  # dataset -> why the scheduler could not start (said in the owner's note)


def persistence_note(settings: Settings, *, owner: bool = True) -> str:
    """One sentence for the owner about whether votes survive a restart here, or "" when nothing needs saying.

    The dataset's id is for the owner only (`owner=False`: the note a visitor's page shows names no dataset); so is
    the word that anonymous voters get new ids at a restart (`voter_note`).
    """
    dataset = f" {settings.sync_dataset}" if owner else ""
    if settings.sync_dataset in _FAILED:
        why = f" ({_FAILED[settings.sync_dataset]})" if owner else ""
        return f"**Votes are not synced:** the dataset{dataset} was not used when the app started{why}." + (
            " Restart the app to try again." if owner else ""
        )
    if settings.sync_dataset and settings.hf_token:
        minutes = f"{settings.sync_every / 60:g} minute{'' if settings.sync_every == 60 else 's'}"
        where = f"the dataset **{settings.sync_dataset}**" if owner else "the owner's dataset"
        note = (
            f"Votes, generations and feedback are pushed to {where} every {minutes} and read back at start, so "
            "they survive a restart."
        )
        return " ".join(filter(None, (note, voter_note(settings) if owner else "")))
    if settings.sync_dataset:
        return "**Votes are not synced:** WORKBENCH_SYNC_DATASET is set but HF_TOKEN is not."
    if settings.store_survives_restart:
        return voter_note(settings) if owner else ""
    return (
        "**Votes will not survive a restart:** this Space keeps its store inside the app's folder, which is "
        "rebuilt on every restart. Enable persistent storage (/data), set WORKBENCH_DB_URL to a database, or set "
        "WORKBENCH_SYNC_DATASET=user/name and HF_TOKEN to keep them in a dataset."
    )


def voter_note(settings: Settings) -> str:
    """For the owner: "" when anonymous voter ids stay the same across a restart, else the sentence that says they
    do not and how to fix it (votes kept by a database or a dataset would otherwise count a returning visitor's
    second ballot on a pair as a new voter's)."""
    if settings.voter_ids_survive_restart:
        return ""
    return (
        "**Voter ids change at a restart:** the key they are made with is kept beside the store, which a restart "
        "loses, so a visitor may vote again on pairs they voted on. Set WORKBENCH_VOTER_KEY as a Space secret (any "
        "32 or more random characters) to keep them."
    )


def _files(folder: Path, table: str) -> list[Path]:
    return sorted(p for p in (folder / table).glob("*.jsonl") if p.is_file()) if (folder / table).is_dir() else []


def load_folder(store: Store, folder: str | Path) -> dict[str, int]:
    """Import every table's files under `folder` into the store (tables in TABLES order, files by name, which is
    by time); returns the rows added per table. A file that cannot be read is skipped with a warning in the log
    (it stays in the dataset)."""
    folder, added = Path(folder), {}
    for table in TABLES:
        added[table] = 0
        for path in _files(folder, table):
            try:
                added[table] += store.import_records(table, read_records(path))
            except WorkbenchError as exc:
                log.warning("Skipped %s while restoring the store: %s", path.name, exc)
    return added


def identities(folder: str | Path) -> dict[str, set[str]]:
    """What identifies each row already in `folder`'s files, per table (see `sync_identity`)."""
    folder, found = Path(folder), {}
    for table in TABLES:
        found[table] = set()
        for path in _files(folder, table):
            try:
                found[table] |= {sync_identity(table, record) for _, record in read_records(path)}
            except WorkbenchError as exc:
                log.warning("Could not read %s: %s", path.name, exc)
    return found


class Outbox:
    """The folder the scheduler pushes: each call of `write_new` adds one file per table holding the rows the
    dataset does not have yet (those not in the outbox, nor in what was restored at start)."""

    def __init__(self, store: Store, folder: str | Path, known: dict[str, set[str]] | None = None) -> None:
        self.store = store
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.synced = {table: set() for table in TABLES}
        for source in (known or {}, identities(self.folder)):
            for table, keys in source.items():
                self.synced.setdefault(table, set()).update(keys)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The table's rows as they are written (the export's form, without PRIVATE fields): the Arena's votes
        only, since the chat's regenerate pairs travel with the feedback."""
        records, _ = self.store.export_records(table, source="arena")
        return [{k: v for k, v in record.items() if k not in PRIVATE} for record in records]

    def write_new(self) -> dict[str, int]:
        """Write the rows not synced yet, one new file per table that has any; returns the rows written."""
        # Microseconds in the name: files sort in the order they were written, even two pushes in one second.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        written = {}
        for table in TABLES:
            rows = self.rows(table)
            fresh = [(sync_identity(table, r), r) for r in rows]
            fresh = [(key, r) for key, r in fresh if key not in self.synced[table]]
            written[table] = len(fresh)
            if fresh:
                _write_atomically(self.folder / table / f"{stamp}-{uuid.uuid4().hex[:8]}.jsonl", [r for _, r in fresh])
                self.synced[table].update(key for key, _ in fresh)
        return written


def _write_atomically(path: Path, records: list[dict[str, Any]]) -> None:
    """Write JSON lines to a hidden temporary file beside `path`, flush it to disk, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class StoreScheduler(CommitScheduler):
    """huggingface_hub's CommitScheduler that writes the store's new rows into the outbox before each push (its
    documented way to prepare files: override `push_to_hub`)."""

    def __init__(self, outbox: Outbox, **kwargs: Any) -> None:
        self.outbox = outbox  # set first: the scheduler's thread pushes once as soon as it starts
        super().__init__(folder_path=outbox.folder, **kwargs)

    def push_to_hub(self):
        with self.lock:  # the listing in push_to_hub takes the same lock: it never sees a file being written
            self.outbox.write_new()
        return super().push_to_hub()


def _hidden(settings: Settings, text: str) -> str:
    """`text` with the token and every other known secret masked (a hub error may quote the request)."""
    from workbench.safety.redact import known_secrets, redact

    return redact(text, [s for s in (settings.hf_token, *known_secrets()) if s])


def restore(api: Any, settings: Settings, store: Store) -> dict[str, int]:
    """Download the dataset into `var/sync/restored` and import it; {} when it does not exist yet or cannot be
    reached (logged: the app starts anyway, and nothing in the dataset is lost)."""
    from huggingface_hub.errors import RepositoryNotFoundError

    folder = settings.sync_dir / "restored"
    try:
        api.snapshot_download(
            repo_id=settings.sync_dataset, repo_type="dataset", local_dir=folder, allow_patterns=["*.jsonl"]
        )
    except RepositoryNotFoundError:
        return {}
    except Exception as exc:  # the hub is down or the token is wrong: say so in the log, go on without it
        log.warning(
            "Could not download %s to restore the store: %s", settings.sync_dataset, _hidden(settings, str(exc))
        )
        return {}
    return load_folder(store, folder)


def public_refusal(api: Any, settings: Settings) -> str | None:
    """Why the dataset may not be synced to, or None: a public dataset would publish every vote, typed prompt and
    liked chat to everyone, so it is refused unless WORKBENCH_SYNC_PUBLIC=1. `CommitScheduler(private=True)` only
    applies when it creates the dataset, so an existing one's visibility is read first (`HfApi.repo_info`); one
    that does not exist yet is created private. A visibility that cannot be read is a refusal too."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        info = api.repo_info(settings.sync_dataset, repo_type="dataset")
    except RepositoryNotFoundError:
        return None
    except Exception as exc:  # the hub is down or the token is wrong: the scheduler could not push either
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"its visibility could not be read: {_hidden(settings, first)}"
    if getattr(info, "private", None) is True or settings.sync_public:
        return None
    return (
        "it is public, so everyone could read the votes, prompts and liked chats; make it private, or set "
        "WORKBENCH_SYNC_PUBLIC=1 to publish them"
    )


def start(settings: Settings, *, api: Any = None) -> StoreScheduler | None:
    """Restore the store from WORKBENCH_SYNC_DATASET and start pushing to it; None (nothing done) unless both the
    dataset and HF_TOKEN are set. `api` is the `HfApi` to use (one with the token by default)."""
    if not settings.sync_dataset or not settings.hf_token:
        return None
    from huggingface_hub import HfApi

    from workbench.store import Store

    api = api or HfApi(token=settings.hf_token)
    refusal = public_refusal(api, settings)
    if refusal is not None:
        _FAILED[settings.sync_dataset] = refusal
        log.error("Votes will not be synced to %s: %s", settings.sync_dataset, refusal)
        return None
    # The app's own background job, not a visitor: it may read and import every row whatever the admin rules.
    store = Store(settings.db_url)  # as this machine's shell (access.SHELL): what the app itself does
    added = restore(api, settings, store)
    if any(added.values()):
        log.info("Restored from %s: %s", settings.sync_dataset, added)
    outbox = Outbox(store, settings.sync_dir / "outbox", known=identities(settings.sync_dir / "restored"))
    try:
        return StoreScheduler(
            outbox,
            repo_id=settings.sync_dataset,
            repo_type="dataset",
            every=settings.sync_every / 60,
            private=True,
            token=settings.hf_token,
            allow_patterns=["*.jsonl"],
            ignore_patterns=[".*", "**/.*"],
            hf_api=api,
        )
    except Exception as exc:  # the dataset cannot be created or reached: the app serves anyway, and says so
        reason = _hidden(settings, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        _FAILED[settings.sync_dataset] = reason
        log.error("Votes will not be synced to %s: %s", settings.sync_dataset, reason)
        return None
