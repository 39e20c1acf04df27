"""A synthetic ratings store at any size: checkpoints, prompts, generations and blind pairwise votes, written in
bulk, for the leaderboard's benchmark and for tests that need many votes.

    from workbench.store import Store
    from workbench.bench.votes import fill_votes

    with Store("sqlite:///votes.db") as store:
        truth = fill_votes(store, votes=100_000, checkpoints=7, prompts=200, raters=50)

Every prompt has one generation per checkpoint and settings variant; votes go to pairs of generations of the
same prompt (different checkpoints, or with `settings_pairs` also the same checkpoint under two settings), each
(rater, pair) at most once, outcomes drawn from a Bradley-Terry model with known strengths (returned, so a test
can check a leaderboard ranks them right), ties and both-bad votes included, the left side drawn at random.
Rows go in through SQLAlchemy Core inserts in batches (the store's per-row API would take minutes at 100,000).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from workbench.errors import WorkbenchError
from workbench.store.records import digest, normalize_prompt, normalize_settings
from workbench.store.schema import Checkpoint, Generation, Vote

_BATCH = 5000
TIE, BOTHBAD = 0.10, 0.03  # shares of the votes that are ties and both-bad


@dataclass
class VoteSet:
    """What `fill_votes` wrote: names, the true strengths (Elo scale, higher is better) and counts.

    Attributes:
        checkpoints: Checkpoint names, weakest first.
        settings: The settings variants (normalized dicts), weakest first.
        strength: Elo-scale strength of each (checkpoint, settings index) contestant.
        votes: Votes written.
        generations: Generations written.
    """

    checkpoints: list[str]
    settings: list[dict[str, Any]]
    strength: dict[tuple[str, int], float] = field(default_factory=dict)
    votes: int = 0
    generations: int = 0


def _generation_rows(store, names: list[str], settings: list[dict], prompts: int) -> list[dict[str, Any]]:
    ids = {}
    with store._write() as s:
        for name in names:
            s.execute(insert(Checkpoint).values(name=name, base_model="synthetic"))
        ids = dict(s.execute(select(Checkpoint.name, Checkpoint.id).where(Checkpoint.name.in_(names))).all())
    rows = []
    for p in range(prompts):
        text, messages, system = normalize_prompt(f"Synthetic prompt {p}: say something useful.", None)
        for name in names:
            for k, request in enumerate(settings):
                rows.append(
                    {
                        "uid": uuid.uuid4().hex,
                        "checkpoint_id": ids[name],
                        "prompt": text,
                        "messages": messages,
                        "system_prompt": system,
                        "prompt_hash": digest(messages),
                        "settings": request,
                        "settings_hash": digest(request),
                        "output": f"Answer to prompt {p} from {name} with settings {k}.",
                        "backend": "llamacpp",
                        **{key: request[key] for key in ("temperature", "top_p", "top_k", "max_new_tokens")},
                    }
                )
    return rows


def _insert(store, table: type, rows: list[dict[str, Any]]) -> None:
    with store._write() as s:
        for start in range(0, len(rows), _BATCH):
            s.execute(insert(table), rows[start : start + _BATCH])


def _pairs(n_ckpt: int, n_set: int, settings_pairs: bool) -> list[tuple[int, int]]:
    """Contestant index pairs (i < j) within one prompt; contestant = checkpoint * n_set + settings index."""
    out = []
    for i in range(n_ckpt * n_set):
        for j in range(i + 1, n_ckpt * n_set):
            same_ckpt = i // n_set == j // n_set
            same_set = i % n_set == j % n_set
            if (same_set and not same_ckpt) or (settings_pairs and same_ckpt and not same_set):
                out.append((i, j))
    return out


def fill_votes(
    store,
    *,
    votes: int = 100_000,
    checkpoints: int = 7,
    prompts: int = 200,
    raters: int = 50,
    settings: Sequence[Mapping[str, Any]] | None = None,
    settings_pairs: bool = False,
    reasons: float = 0.05,
    seed: int = 0,
    prefix: str = "synthetic",
) -> VoteSet:
    """Write a synthetic ratings set into an empty `store` (see the module docstring) and return its truth.

    Args:
        store: A `workbench.store.Store`.
        votes: Pairwise votes to write (at most one per rater and pair, so at most raters x pairs).
        checkpoints: Checkpoints, named `{prefix}-ckpt-100`, `-200`, ...; later ones are stronger.
        prompts: Distinct prompts.
        raters: Raters, named `rater-00`, ...
        settings: Generation settings variants (default: one, the defaults); later ones are stronger.
        settings_pairs: Also pair one checkpoint's outputs under two settings (preference per setting).
        reasons: Share of votes that carry a typed reason.
        seed: Makes the set repeatable.
        prefix: Start of the checkpoint names.
    """
    variants = [normalize_settings(s) for s in (settings or [None])]
    names = [f"{prefix}-ckpt-{100 * (i + 1)}" for i in range(checkpoints)]
    pairs = _pairs(checkpoints, len(variants), settings_pairs)
    if not pairs or raters < 1:
        raise WorkbenchError("A synthetic vote set needs two contestants and a rater.")
    slots = len(pairs) * prompts * raters
    if votes > slots:
        raise WorkbenchError(f"{votes} votes do not fit {slots} (rater, pair) slots; add prompts or raters.")
    truth = VoteSet(names, variants)
    strength = np.array(
        [60.0 * (i // len(variants)) + 45.0 * (i % len(variants)) for i in range(len(names) * len(variants))]
    )
    truth.strength = {(names[i // len(variants)], i % len(variants)): float(v) for i, v in enumerate(strength)}
    rows = _generation_rows(store, names, variants, prompts)
    _insert(store, Generation, rows)
    with store._write() as s:
        ids = np.array(s.scalars(select(Generation.id).order_by(Generation.id)).all()[-len(rows) :])
    truth.generations = len(rows)
    truth.votes = votes
    _insert(store, Vote, _vote_rows(ids, pairs, strength, prompts, raters, votes, reasons, seed))
    return truth


def _vote_rows(ids, pairs, strength, prompts, raters, votes, reasons, seed) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    per_prompt = len(strength)
    slot = rng.choice(len(pairs) * prompts * raters, size=votes, replace=False)
    rater, rest = np.divmod(slot, len(pairs) * prompts)
    prompt, pair = np.divmod(rest, len(pairs))
    i, j = np.array(pairs).T[:, pair]
    p_i = 1.0 / (1.0 + 10.0 ** ((strength[j] - strength[i]) / 400.0))
    u = rng.random(votes)
    decisive = 1.0 - TIE - BOTHBAD
    winner = np.where(
        u < decisive * p_i, "a", np.where(u < decisive, "b", np.where(u < decisive + TIE, "tie", "bothbad"))
    )
    left = rng.choice(["a", "b"], size=votes)
    with_reason = rng.random(votes) < reasons
    start = 1.7e9
    return [
        {
            "generation_a_id": int(ids[prompt[n] * per_prompt + i[n]]),
            "generation_b_id": int(ids[prompt[n] * per_prompt + j[n]]),
            "winner": str(winner[n]),
            "shown_left": str(left[n]),
            "reason": f"Reason {n}: clearer." if with_reason[n] else None,
            "rater": f"rater-{rater[n]:02d}",
            "session": None,
            "client_key": None,
            "created_at": start + 3.0 * n,
        }
        for n in range(votes)
    ]
