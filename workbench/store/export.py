"""Export and import of the store's ratings and generations, as JSONL or CSV.

What can be exported (`EXPORTS`):
    generations  every stored output with its prompt, checkpoint, settings, stats and backend
    votes        pairwise votes, pointing at generations by uid (with their checkpoints and backends)
    likert       1-5 scores, pointing at generations by uid (with its checkpoint and backend)
    battles      votes in FastChat's clean-battle form (model_a, model_b, winner, judge, tstamp, conversations)
    preferences  decisive votes as TRL DPO pairs in conversational form: prompt / chosen / rejected messages
    feedback     the chat's likes, dislikes (and reactions taken back) and regenerate pairs, by generation uid
    rater_status the owner dropping a rater from the leaderboard, or counting them again (`workbench.store.raters`)
    corrections  chat replies a person edited, as SFT examples in chat form: the conversation answered with the
                 corrected text (with the checkpoint, the reply's uid, rater and time)

Pairwise judgements come from two sources: the Arena's blind votes ("arena") and the chat's regenerate pairs
("chat": the visitor regenerated a reply and kept the new one, which is `generation_a` and the winner). votes and
preferences carry a `source` column and export both unless `source` says "arena" or "chat"; battles are the
Arena's alone (FastChat's form is for blind votes). A correction (a reply a person edited) is a preference too,
the corrected text over the model's reply: preferences hold them with source "edit" (and under "all").

generations, votes, likert, feedback, corrections and rater_status can be imported back (`IMPORTS`), into the same
or another store: rows are matched by generation uid and rating key, so importing a file twice adds nothing the
second time. A
generations file from before backends were recorded (no `backend` column) imports with the backend unknown. In
CSV, lists and objects are JSON text. Exporting, importing and deleting need the admin token when one is set.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workbench.errors import WorkbenchError
from workbench.jsonl import iter_json_lines, read_text
from workbench.store.corrections import correction_pair, sft_example
from workbench.store.feedback import FEEDBACK_COLUMNS
from workbench.store.frames import LIKERT_COLUMNS, VOTE_COLUMNS, battle_from_vote
from workbench.store.generations import GENERATION_COLUMNS
from workbench.store.raters import RATER_STATUS_COLUMNS
from workbench.store.records import digest
from workbench.store.schema import Generation

EXPORTS = ("generations", "votes", "likert", "battles", "preferences", "feedback", "corrections", "rater_status")
IMPORTS = ("generations", "votes", "likert", "feedback", "corrections", "rater_status")
# whose pairwise judgements: the Arena's votes, the chat's regenerate pairs, the chat's corrections (edited replies)
SOURCES = ("all", "arena", "chat", "edit")
FORMATS = ("jsonl", "csv")
# A vote row points at its generations by uid: the store's internal ids and the generations' own columns (text,
# settings) stay out, since the generations export carries them. Any other vote column is exported.
_VOTE_NOT_EXPORTED = (
    "generation_a_id",
    "generation_b_id",
    "prompt_hash",
    "messages",
    "messages_b",
    "output_a",
    "output_b",
)
_VOTE_NOT_EXPORTED += ("settings_a", "settings_b", "same_settings")
VOTE_EXPORT = [c for c in VOTE_COLUMNS if c not in _VOTE_NOT_EXPORTED]
LIKERT_EXPORT = [
    c for c in LIKERT_COLUMNS if c not in ("generation_id", "prompt_hash", "messages", "output", "settings")
]
GENERATION_EXPORT = [c for c in GENERATION_COLUMNS if c != "prompt_id"]
_CORRECTION_EXTRAS = ("model", "generation_uid", "rater", "tstamp", "key")  # beside the SFT example's messages
_JSON_FIELDS = {
    "messages",
    "messages_b",
    "settings",
    "metadata",
    "conversation_a",
    "conversation_b",
    "prompt",
    "chosen",
    "rejected",
}


def preference_pair(vote: Mapping[str, Any]) -> dict[str, Any] | None:
    """A decisive vote as a TRL DPO example in conversational form, or None for a tie or both-bad vote, or for the
    two sides of a multi-turn battle (each answered its own conversation, so no one prompt is shared)."""
    if vote["winner"] not in ("a", "b"):
        return None
    if vote.get("messages_b") is not None and list(vote["messages_b"]) != list(vote["messages"]):
        return None
    loser = "b" if vote["winner"] == "a" else "a"
    return {
        "prompt": list(vote["messages"]),
        "chosen": [{"role": "assistant", "content": vote[f"output_{vote['winner']}"]}],
        "rejected": [{"role": "assistant", "content": vote[f"output_{loser}"]}],
        "source": vote.get("source", "arena"),
    }


def check_source(source: str) -> str:
    """`source` if it is one of SOURCES, else WorkbenchError with one sentence."""
    if source not in SOURCES:
        raise WorkbenchError(f"The source must be one of {', '.join(SOURCES)}, not {source!r}.")
    return source


def sync_identity(what: str, record: Mapping[str, Any]) -> str:
    """What identifies an exported row across stores (the key an import matches on): a generation's uid, else the
    rating's key, or for a rating without one the digest its import would key it by."""
    if what == "generations":
        return str(record["uid"])
    if record.get("key"):
        return str(record["key"])
    fields = _KEY_FIELDS[what]
    return digest({f: record.get(f) for f in fields})


_KEY_FIELDS = {
    "votes": ("generation_a_uid", "generation_b_uid", "winner", "rater", "tstamp"),
    "likert": ("generation_uid", "score", "rater", "tstamp"),
    "feedback": ("kind", "generation_uid", "other_generation_uid", "rater", "tstamp"),
    "corrections": ("generation_uid", "rater", "tstamp"),
    "rater_status": ("kind", "rater", "tstamp"),
}


def write_jsonl(records: Iterable[Mapping[str, Any]], out: io.TextIOBase) -> int:
    """Write one JSON object per line; returns the count."""
    n = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        n += 1
    return n


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def _csv_cell(value: Any) -> Any:
    """A value as a CSV cell: lists and dicts as JSON text; text a spreadsheet would run as a formula (a
    visitor's reason "=HYPERLINK(...)") behind a quote mark, as OWASP advises; `_csv_value` takes it off."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_csv(records: list[Mapping[str, Any]], out: io.TextIOBase, columns: list[str] | None = None) -> int:
    """Write records as CSV with a header; lists and dicts become JSON text, formulas are defused. Returns the
    count."""
    columns = columns or (list(records[0]) if records else [])
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _csv_cell(v) for k, v in record.items()})
    return len(records)


def read_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) from a .jsonl or .csv file; a bad line raises WorkbenchError naming it."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        yield from iter_json_lines(path)
        return
    read_text(path)  # a missing or non-UTF-8 file: one sentence before the CSV reader starts
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for record in reader:
            yield reader.line_num, {k: _csv_value(k, v, reader.line_num) for k, v in record.items()}


def _csv_value(key: str, value: str | None, line: int) -> Any:
    if value == "" or value is None:
        return None
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        value = value[1:]  # written defused by `_csv_cell`
    if key in _JSON_FIELDS and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise WorkbenchError(f"Line {line}: the {key} column is not valid JSON.") from None
    return value


class ExportMixin:
    """export_records, export_bytes, export, import_records, import_file."""

    def export_records(
        self, what: str, *, token: str | None = None, source: str = "all"
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The rows of one export (see EXPORTS) and its column order (admin). `source` limits votes and
        preferences to the Arena's votes ("arena"), the chat's regenerate pairs ("chat") or, for preferences, its
        corrections ("edit")."""
        self.check_admin(token)
        check_source(source)
        # From the rows, not the DataFrames: pandas turns a missing text value into NaN, which is not JSON.
        if what == "generations":
            return [{c: r[c] for c in GENERATION_EXPORT} for r in self._generation_rows()], GENERATION_EXPORT
        if what == "likert":
            return [{c: r[c] for c in LIKERT_EXPORT} for r in self._likert_rows()], LIKERT_EXPORT
        if what == "feedback":
            return self.feedback_rows(), list(FEEDBACK_COLUMNS)
        if what == "corrections":
            records = [{**sft_example(r), **{k: r[k] for k in _CORRECTION_EXTRAS}} for r in self.correction_rows()]
            return records, ["messages", *_CORRECTION_EXTRAS]
        if what == "rater_status":
            return self.rater_status_rows(), list(RATER_STATUS_COLUMNS)
        if what == "battles":
            records = [battle_from_vote(r) for r in self._vote_rows()]
            return records, list(records[0]) if records else ["model_a", "model_b", "winner", "judge", "tstamp"]
        if what in ("votes", "preferences"):
            rows = self.pairwise_rows(source)
            if what == "votes":
                return [{c: r[c] for c in VOTE_EXPORT} for r in rows], VOTE_EXPORT
            pairs = [p for p in map(preference_pair, rows) if p is not None]
            if source in ("all", "edit"):
                pairs += [correction_pair(r) for r in self.correction_rows()]
            return pairs, ["prompt", "chosen", "rejected", "source"]
        raise WorkbenchError(f"Export one of {', '.join(EXPORTS)}, not {what!r}.")

    def pairwise_rows(self, source: str = "all") -> list[dict[str, Any]]:
        """Pairwise judgements as vote rows (VOTE_COLUMNS), the Arena's votes then the chat's regenerate pairs."""
        check_source(source)
        rows = self._vote_rows() if source in ("all", "arena") else []
        return rows + (self._preferred_rows() if source in ("all", "chat") else [])

    def export_bytes(self, what: str, fmt: str = "jsonl", *, token: str | None = None, source: str = "all") -> bytes:
        """One export as the bytes of a JSONL or CSV file (what a download button serves)."""
        if fmt not in FORMATS:
            raise WorkbenchError(f"The export format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
        records, columns = self.export_records(what, token=token, source=source)
        out = io.StringIO(newline="")
        if fmt == "jsonl":
            write_jsonl(records, out)
        else:
            write_csv(records, out, columns)
        return out.getvalue().encode("utf-8")

    def export(self, what: str, fmt: str, path: str | Path, *, token: str | None = None, source: str = "all") -> int:
        """Write one export to `path`; returns the number of records."""
        data = self.export_bytes(what, fmt, token=token, source=source)
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        Path(path).expanduser().write_bytes(data)
        return data.count(b"\n") - (1 if fmt == "csv" else 0)

    def import_file(self, what: str, path: str | Path, *, token: str | None = None) -> int:
        """Import a JSONL or CSV file written by `export` (generations, votes or likert); returns rows added."""
        return self.import_records(what, read_records(path), token=token)

    def import_records(
        self, what: str, records: Iterable[tuple[int, Mapping[str, Any]]], *, token: str | None = None
    ) -> int:
        """Import (line number, record) pairs; already-present rows are skipped. Returns rows added."""
        self.check_admin(token)
        if what not in IMPORTS:
            raise WorkbenchError(f"Import one of {', '.join(IMPORTS)}, not {what!r}.")
        one = {
            "generations": self._import_generation,
            "votes": self._import_vote,
            "likert": self._import_likert,
            "feedback": self._import_feedback,
            "corrections": self._import_correction,
            "rater_status": lambda r: self._import_rater_status(r, self._import_key(r, _KEY_FIELDS["rater_status"])),
        }[what]
        added = 0
        for line, record in records:
            try:
                added += one(record)
            except WorkbenchError as exc:
                raise WorkbenchError(f"Line {line}: {exc}") from None
            except (KeyError, TypeError, ValueError) as exc:
                raise WorkbenchError(f"Line {line}: a field is missing or malformed ({exc}).") from None
        return added

    def _uid_map(self, uids: list[str]) -> dict[str, int]:
        with self._read() as s:
            return {
                uid: gid
                for uid, gid in s.execute(select(Generation.uid, Generation.id).where(Generation.uid.in_(uids)))
            }

    def _import_generation(self, r: Mapping[str, Any]) -> int:
        if self._uid_map([r["uid"]]):
            return 0
        stats = {k: r.get(k) for k in ("prompt_tokens", "new_tokens", "finish_reason", "seed", "backend")}
        stats.update({k: float(r[k]) for k in ("ttft_s", "tokens_per_s", "total_s") if r.get(k) is not None})
        stats.update({k: int(float(stats[k])) for k in ("prompt_tokens", "new_tokens", "seed") if stats[k] is not None})
        self.add_generation(
            r["checkpoint"],
            r["messages"],
            r["output"] or "",
            r["settings"],
            stats=stats,
            metadata=r.get("metadata") or None,
            uid=r["uid"],
            created_at=float(r["created_at"]) if r.get("created_at") is not None else None,
            origin=r.get("origin") or None,
        )
        return 1

    def _ids_for(self, *uids: str) -> list[int]:
        found = self._uid_map(list(uids))
        for uid in uids:
            if uid not in found:
                raise WorkbenchError(f"generation {uid!r} is not in the store; import the generations first.")
        return [found[u] for u in uids]

    def _import_key(self, r: Mapping[str, Any], fields: tuple[str, ...]) -> str:
        return r.get("key") or digest({f: r.get(f) for f in fields})  # stable, so a re-import adds nothing

    def _import_vote(self, r: Mapping[str, Any]) -> int:
        a, b = self._ids_for(r["generation_a_uid"], r["generation_b_uid"])
        key = self._import_key(r, _KEY_FIELDS["votes"])
        tstamp = float(r["tstamp"]) if r.get("tstamp") is not None else None
        if (r.get("source") or "arena") == "chat":  # a regenerate pair: a is the reply kept
            before = self._count_key("feedback", key)
            self.add_feedback(
                "preferred", a, other=b, rater=r["rater"], session=r.get("session"), key=key, created_at=tstamp
            )
            return 1 - before
        before = self._count_key("votes", key)
        self.add_vote(
            a,
            b,
            r["winner"],
            rater=r["rater"],
            shown_left=r.get("shown_left") or "a",
            reason=r.get("reason"),
            session=r.get("session"),
            key=key,
            created_at=tstamp,
        )
        return 1 - before

    def _import_likert(self, r: Mapping[str, Any]) -> int:
        (gid,) = self._ids_for(r["generation_uid"])
        key = self._import_key(r, ("generation_uid", "score", "rater", "tstamp"))
        before = self._count_key("likert", key)
        tstamp = float(r["tstamp"]) if r.get("tstamp") is not None else None
        self.add_likert(
            gid,
            int(float(r["score"])),
            rater=r["rater"],
            comment=r.get("comment"),
            session=r.get("session"),
            key=key,
            created_at=tstamp,
        )
        return 1 - before

    def _import_feedback(self, r: Mapping[str, Any]) -> int:
        other = r.get("other_generation_uid")
        ids = self._ids_for(r["generation_uid"], *([other] if other else []))
        key = self._import_key(r, _KEY_FIELDS["feedback"])
        before = self._count_key("feedback", key)
        tstamp = float(r["tstamp"]) if r.get("tstamp") is not None else None
        self.add_feedback(
            r["kind"],
            ids[0],
            other=ids[1] if other else None,
            rater=r["rater"],
            session=r.get("session"),
            key=key,
            created_at=tstamp,
        )
        return 1 - before

    def _import_correction(self, r: Mapping[str, Any]) -> int:
        (gid,) = self._ids_for(r["generation_uid"])
        key = self._import_key(r, _KEY_FIELDS["corrections"])
        before = self._count_key("corrections", key)
        tstamp = float(r["tstamp"]) if r.get("tstamp") is not None else None
        text = r["messages"][-1]["content"]  # the SFT example's last message is the corrected reply
        self.add_correction(gid, text, rater=r["rater"], session=r.get("session"), key=key, created_at=tstamp)
        return 1 - before

    def _count_key(self, table: str, key: str) -> int:
        from workbench.store.schema import Correction, Feedback, Likert, Vote

        model = {"votes": Vote, "likert": Likert, "feedback": Feedback, "corrections": Correction}[table]
        with self._read() as s:
            return 1 if s.scalar(select(model.id).where(model.client_key == key)) is not None else 0
