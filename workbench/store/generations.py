"""Generations in the store: record a model output with its prompt, checkpoint, settings and stats; find it again.

A generation is identified for re-use by (prompt with system prompt, checkpoint, requested settings): the
dashboard asks `find_generation` before generating, and shows the stored output when there is one. Each row
also records the backend that made it (from `ReplyStats.backend`; NULL when unknown), so every rating of it is
tied to its exact producer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from sqlalchemy import delete, select

from workbench.errors import WorkbenchError
from workbench.generation.settings import FINISH_REASONS, GenerationSettings
from workbench.store.records import GenerationRecord, check_backend, digest, normalize_prompt, normalize_settings
from workbench.store.schema import Checkpoint, Generation, Likert, Vote

_STATS = ("prompt_tokens", "new_tokens", "ttft_s", "tokens_per_s", "total_s", "finish_reason", "seed", "backend")
ORIGINS = (None, "battle", "chat")  # where a visitor's own text went in (see schema.Generation.origin)
Prompt = str | Sequence[Mapping[str, Any]]
SettingsLike = GenerationSettings | Mapping[str, Any] | None


def to_record(g: Generation, checkpoint: str) -> GenerationRecord:
    """A detached, read-only record of a generation row."""
    return GenerationRecord(
        id=g.id,
        uid=g.uid,
        checkpoint=checkpoint,
        prompt=g.prompt,
        messages=list(g.messages),
        system_prompt=g.system_prompt,
        settings=dict(g.settings),
        output=g.output,
        seed=g.seed,
        prompt_tokens=g.prompt_tokens,
        new_tokens=g.new_tokens,
        ttft_s=g.ttft_s,
        tokens_per_s=g.tokens_per_s,
        total_s=g.total_s,
        finish_reason=g.finish_reason,
        prompt_id=g.prompt_id,
        created_at=g.created_at,
        meta=dict(g.meta or {}),
        backend=g.backend,
    )


def _stats_dict(stats: Any) -> dict[str, Any]:
    if stats is None:
        return {}
    if is_dataclass(stats):
        stats = asdict(stats)
    if not isinstance(stats, Mapping):
        raise WorkbenchError("Reply stats must be a ReplyStats or a mapping.")
    out = {k: stats.get(k) for k in _STATS if stats.get(k) is not None}
    out["backend"] = check_backend(out.get("backend"))  # "" (unknown) is stored as NULL
    if out.get("finish_reason") not in (None, *FINISH_REASONS):
        raise WorkbenchError(f"Finish reason must be one of {', '.join(FINISH_REASONS)}, not {out['finish_reason']!r}.")
    return out


def _server_details(stats: Any) -> dict[str, Any]:
    details = getattr(stats, "details", None) if not isinstance(stats, Mapping) else stats.get("details")
    return dict(details) if isinstance(details, Mapping) and details else {}


class GenerationsMixin:
    """add_generation, find_generation, get_generation, generations, delete_generation."""

    def add_generation(
        self,
        checkpoint: str,
        prompt: Prompt,
        output: str,
        settings: SettingsLike = None,
        *,
        system_prompt: str | None = None,
        stats: Any = None,
        prompt_id: int | None = None,
        base_model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        uid: str | None = None,
        created_at: float | None = None,
        origin: str | None = None,
    ) -> int:
        """Store one output; the checkpoint is created when it is new. Returns the generation id.

        Args:
            checkpoint: Name of the checkpoint that produced it (the leaderboard's model name).
            prompt: The user's text, or the conversation (`[{"role", "content"}, ...]`, last message the user's).
            output: The reply text.
            settings: The generation settings as requested (GenerationSettings or a dict of its fields).
            system_prompt: System prompt, unless the conversation starts with one.
            stats: `ReplyStats` (or a dict): token counts, timing, finish reason, the seed actually used and
                the backend that generated it ("" or absent: unknown, stored as NULL).
            prompt_id: The prompt-set prompt it answers, if any.
            base_model: Recorded on the checkpoint when the checkpoint is created here.
            metadata: Anything else worth keeping (JSON).
            uid: A stable id for export/import; a new one is made when not given.
            created_at: Epoch seconds (imports keep the original time); now when not given.
            origin: "battle" for an answer to a prompt a visitor typed in the Arena, "chat" for a chat reply kept
                for its feedback; None otherwise. Such outputs are never served to other raters.
        """
        if not isinstance(output, str):
            raise WorkbenchError("A generation's output must be text.")
        if origin not in ORIGINS:
            raise WorkbenchError(f"A generation's origin must be one of battle, chat or none, not {origin!r}.")
        text, messages, system = normalize_prompt(prompt, system_prompt)
        request = normalize_settings(settings)
        values = _stats_dict(stats)
        values.setdefault("seed", request.get("seed"))
        server = _server_details(stats)
        if server:  # a remote model's URL, model name, settings sent and usage (never a key)
            metadata = {**(metadata or {}), "server": server}
        row = Generation(
            uid=uid or uuid.uuid4().hex,
            prompt_id=prompt_id,
            prompt=text,
            messages=messages,
            system_prompt=system,
            prompt_hash=digest(messages),
            settings=request,
            settings_hash=digest(request),
            **{k: request[k] for k in ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty")},
            output=output,
            meta=dict(metadata) if metadata else None,
            origin=origin,
            **values,
        )
        return self._insert_for_checkpoint(row, checkpoint, base_model, created_at)

    def find_generation(
        self, prompt: Prompt, checkpoint: str, settings: SettingsLike = None, *, system_prompt: str | None = None
    ) -> GenerationRecord | None:
        """The newest stored generation for exactly this request (prompt, system prompt, checkpoint, settings
        as requested, seed included), or None."""
        _, messages, _ = normalize_prompt(prompt, system_prompt)
        query = (
            select(Generation, Checkpoint.name)
            .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            .where(
                Generation.prompt_hash == digest(messages),
                Checkpoint.name == checkpoint,
                Generation.settings_hash == digest(normalize_settings(settings)),
            )
            .order_by(Generation.id.desc())
            .limit(1)
        )
        with self._read() as s:
            found = s.execute(query).first()
            return to_record(*found) if found else None

    def get_generation(self, generation_id: int) -> GenerationRecord:
        """One generation by id; WorkbenchError when there is none."""
        with self._read() as s:
            found = s.execute(
                select(Generation, Checkpoint.name)
                .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
                .where(Generation.id == generation_id)
            ).first()
        if found is None:
            raise WorkbenchError(f"There is no generation with id {generation_id!r} in the store.")
        return to_record(*found)

    def generations(self, *, checkpoint: str | None = None, prompt_set: str | None = None):
        """Generations as a DataFrame, one row each (columns: GENERATION_COLUMNS): ids, checkpoint, prompt,
        messages, settings (dict and one column per setting), output, token counts, timing, finish reason,
        created_at and backend (None or NaN when unknown)."""
        import pandas as pd

        return pd.DataFrame(self._generation_rows(checkpoint, prompt_set), columns=GENERATION_COLUMNS)

    def _generation_rows(self, checkpoint: str | None = None, prompt_set: str | None = None) -> list[dict[str, Any]]:
        # Plain dicts with None where a value is missing (exports need that; pandas would make it NaN).
        from workbench.store.schema import Prompt as PromptRow
        from workbench.store.schema import PromptSet

        query = select(Generation, Checkpoint.name).join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
        if checkpoint is not None:
            query = query.where(Checkpoint.name == checkpoint)
        if prompt_set is not None:
            query = (
                query.join(PromptRow, PromptRow.id == Generation.prompt_id)
                .join(PromptSet, PromptSet.id == PromptRow.prompt_set_id)
                .where(PromptSet.name == prompt_set)
            )
        with self._read() as s:
            return [generation_row(g, name) for g, name in s.execute(query.order_by(Generation.id))]

    def delete_generation(self, generation_id: int, *, token: str | None = None) -> None:
        """Delete a generation and the ratings that point at it (admin)."""
        self.check_admin(token)
        with self._write() as s:
            if s.get(Generation, generation_id) is None:
                raise WorkbenchError(f"There is no generation with id {generation_id!r} in the store.")
            s.execute(
                delete(Vote).where((Vote.generation_a_id == generation_id) | (Vote.generation_b_id == generation_id))
            )
            s.execute(delete(Likert).where(Likert.generation_id == generation_id))
            s.execute(delete(Generation).where(Generation.id == generation_id))


GENERATION_COLUMNS = [
    "id",
    "uid",
    "checkpoint",
    "prompt_id",
    "prompt",
    "messages",
    "system_prompt",
    "prompt_hash",
    "settings",
    "settings_hash",
    "temperature",
    "top_p",
    "top_k",
    "max_new_tokens",
    "repetition_penalty",
    "seed",
    "output",
    "prompt_tokens",
    "new_tokens",
    "ttft_s",
    "tokens_per_s",
    "total_s",
    "finish_reason",
    "metadata",
    "created_at",
    "backend",
    "origin",
]


def generation_row(g: Generation, checkpoint: str) -> dict[str, Any]:
    """One generation as a flat dict (the export and DataFrame form)."""
    row = {c: getattr(g, c) for c in GENERATION_COLUMNS if c not in ("checkpoint", "metadata")}
    row["checkpoint"] = checkpoint
    row["metadata"] = g.meta or {}
    return row
