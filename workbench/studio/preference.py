"""Which generation settings raters prefer: pairs that differ only in settings, and preference against a setting.

    a, b = ensure_settings_pair(router, store, "vicuna-bench", ["base"], [cold, warm])   # made when missing
    table = preference_by_setting(snapshot(store), axis="temperature", checkpoint="base")

A settings pair is one checkpoint's outputs for one prompt under two settings, so a vote between them says which
setting people prefer (`Store.next_pair_for(differ="settings")` serves them on the Rate page and in the Arena).
`preference_by_setting` ranks settings with Bradley-Terry and 95% bootstrap intervals from those votes, as the
leaderboard does (`by="settings"`, or one checkpoint's settings), and lines them up against one setting (the
temperature, or any swept setting) for the Lab page's chart.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.studio.compare import Choose, Request, chosen_pair, stored_or_made

if TYPE_CHECKING:
    from workbench.generation.engine import ChatEngine
    from workbench.generation.router import Router
    from workbench.ratings.snapshot import Snapshot
    from workbench.store import GenerationRecord, Store

AXES = ("temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "adapter_strength")
COLUMNS = ["settings", "value", "rating", "lower", "upper", "battles", "win_rate"]


def ensure_settings_pair(
    engine: ChatEngine | Router,
    store: Store,
    prompt_set: str,
    checkpoints: Sequence[str],
    settings: Sequence[GenerationSettings],
    rng: random.Random | None = None,
    choose: Choose | None = None,
) -> tuple[GenerationRecord, GenerationRecord]:
    """Make sure one random prompt of the set has one random checkpoint's outputs under two different settings
    (generating what the store lacks); returns the two generations. The Arena calls this when it has no settings
    pair left to serve. The two settings are random, or chosen by `choose` (the sampler, as in
    `compare.ensure_pair`) among every pair of their labels; they come from `settings`, or for a local adapter
    from its strengths at the middle one of them (`battle.ladder`)."""
    from workbench.store import settings_label
    from workbench.studio.battle import ladder

    rng = rng or random.Random()
    if not checkpoints:
        raise WorkbenchError("Settings pairs need a checkpoint.")
    if len(dict.fromkeys(settings)) < 2:
        raise WorkbenchError("Settings pairs need at least two different generation settings.")
    prompts = store.prompts(prompt_set)
    if not prompts:
        raise WorkbenchError(f"The prompt set {prompt_set!r} has no prompts.")
    prompt, checkpoint = rng.choice(prompts), rng.choice(list(checkpoints))
    choices = list(dict.fromkeys(ladder(checkpoint, list(settings), engine.settings)))
    pair = rng.sample(choices, 2) if choose is None else chosen_pair(choose, {s: settings_label(s) for s in choices})
    requests = [Request(prompt["text"], checkpoint, s, prompt["system_prompt"], prompt["id"]) for s in pair]
    records = stored_or_made(engine, store, requests)
    return records[0], records[1]


def preference_by_setting(
    snap: Snapshot,
    *,
    axis: str = "temperature",
    checkpoint: str | None = None,
    bootstrap: int = 1000,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Settings ranked by raters' votes on settings pairs, with the value of one setting beside each.

    Only votes between one checkpoint's outputs under two settings count: a vote between two checkpoints would
    mix the checkpoints' quality into the settings' ratings.

    Args:
        snap: `workbench.ratings.snapshot.snapshot(store)`.
        axis: The setting to line them up against: one of AXES.
        checkpoint: Only this checkpoint's settings pairs (None: every checkpoint's, pooled).
        bootstrap: Bootstrap rounds for the 95% intervals.
        seed: Bootstrap seed.

    Returns:
        One row per settings label (columns COLUMNS), ordered by the `axis` value: Bradley-Terry rating with its
        interval, battles and win rate; empty when no vote compares two settings.
    """
    from workbench.ratings import scoring
    from workbench.ratings.leaderboard import contestants

    if axis not in AXES:
        raise WorkbenchError(f"Preference can be charted against {', '.join(AXES)}, not {axis!r}.")
    tally = snap.tallies
    same = tally[tally["model_a"] == tally["model_b"]] if len(tally) else tally
    if checkpoint is not None and len(same):
        same = same[same["model_a"] == checkpoint]
    same = contestants(same, "settings") if len(same) else same
    if same.empty:
        return pd.DataFrame(columns=COLUMNS)
    board = scoring.leaderboard(same, bootstrap=bootstrap, seed=seed)
    known, defaults = snap.settings, GenerationSettings().to_dict()  # the store leaves out a strength of 1
    values = [(known[label] or {}).get(axis, defaults[axis]) if label in known else None for label in board["model"]]
    table = board.rename(columns={"model": "settings"}).assign(value=values)[COLUMNS]
    return table.sort_values(["value", "rating"], ascending=[True, False], ignore_index=True)
