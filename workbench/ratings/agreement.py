"""Inter-rater agreement where items have several raters: Cohen's kappa per pair of raters, Krippendorff's alpha.

Input is a long DataFrame with one row per (item, rater, label). `pairwise_labels(battles)` makes one from
pairwise votes (the item is the prompt and the two models, the label which model won, so left/right order
does not matter); `likert_labels(likert)` from Likert scores (the item is the generation).

    table = pairwise_labels(store.battles())
    agreement(table)              # {"items": .., "raters": .., "alpha": .., "kappa": DataFrame of rater pairs}

Pure numpy/pandas (no sklearn or krippendorff package in the environment); both statistics are checked
against hand-computed and published values in tests/ratings/test_scoring.py.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pandas as pd


def pairwise_labels(battles: pd.DataFrame) -> pd.DataFrame:
    """(item, rater, label) rows from battles: item = question and the two models in sorted order (plus the
    settings when present), label = the winning model's name, "tie" or "bothbad"."""
    winner = np.select(
        [battles["winner"] == "model_a", battles["winner"] == "model_b", battles["winner"] == "tie"],
        [battles["model_a"], battles["model_b"], "tie"],
        default="bothbad",
    )
    a, b = battles["model_a"].astype(str), battles["model_b"].astype(str)
    swapped = a > b
    question = battles["question_id"].astype(str) if "question_id" in battles else pd.Series("", index=battles.index)
    item = question + "|" + a.where(~swapped, b) + "|" + b.where(~swapped, a)
    if "settings_a" in battles and "settings_b" in battles:  # the settings of the lower-named model first
        sa, sb = (
            battles[c].map(lambda s: json.dumps(s, sort_keys=True, default=str)) for c in ("settings_a", "settings_b")
        )
        item = item + "|" + (sa + sb).where(~swapped, sb + sa)
    return pd.DataFrame({"item": item.to_numpy(), "rater": battles["judge"].to_numpy(), "label": winner})


def likert_labels(likert: pd.DataFrame) -> pd.DataFrame:
    """(item, rater, label) rows from Likert scores: item = generation, label = score."""
    return pd.DataFrame(
        {"item": likert["generation_id"].to_numpy(), "rater": likert["rater"].to_numpy(), "label": likert["score"]}
    )


def cohen_kappa(labels_1: list[Any], labels_2: list[Any]) -> float:
    """Cohen's kappa of two raters' labels on the same items: (p_o - p_e) / (1 - p_e); NaN when p_e is 1."""
    a, b = pd.Series(list(labels_1)), pd.Series(list(labels_2))
    if len(a) != len(b) or a.empty:
        raise ValueError("Cohen's kappa needs two equally long, non-empty label lists.")
    observed = float((a.to_numpy() == b.to_numpy()).mean())
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    expected = float((pa * pb.reindex(pa.index).fillna(0)).sum())
    return math.nan if expected >= 1 else (observed - expected) / (1 - expected)


def pairwise_kappa(table: pd.DataFrame, *, min_items: int = 1) -> pd.DataFrame:
    """Cohen's kappa for every pair of raters over the items both rated (each rater's last label per item).

    Columns: rater_1, rater_2, items, kappa.
    """
    wide = table.drop_duplicates(["item", "rater"], keep="last").pivot(index="item", columns="rater", values="label")
    rows = []
    for r1, r2 in itertools.combinations(sorted(wide.columns, key=str), 2):
        both = wide[[r1, r2]].dropna()
        if len(both) >= min_items:
            rows.append({"rater_1": r1, "rater_2": r2, "items": len(both), "kappa": cohen_kappa(both[r1], both[r2])})
    return pd.DataFrame(rows, columns=["rater_1", "rater_2", "items", "kappa"])


def krippendorff_alpha(table: pd.DataFrame, level: str = "nominal") -> float:
    """Krippendorff's alpha over (item, rater, label) rows; items with one label are left out.

    `level` is "nominal" (labels are categories) or "interval" (numeric labels, squared differences).
    Computed from the coincidence matrix: alpha = 1 - (n - 1) * sum(o_ck d_ck) / sum(n_c n_k d_ck).
    NaN when fewer than two labels are pairable or every label is the same.
    """
    if level not in ("nominal", "interval"):
        raise ValueError("level must be 'nominal' or 'interval'.")
    table = table.dropna(subset=["label"])
    values = sorted(table["label"].unique(), key=str)
    index = {v: i for i, v in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for _, labels in table.groupby("item")["label"]:
        m = len(labels)
        if m < 2:
            continue
        counts = np.bincount([index[v] for v in labels], minlength=len(values)).astype(float)
        coincidence += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    n_c = coincidence.sum(1)
    n = n_c.sum()
    if n < 2:
        return math.nan
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    else:
        numbers = np.asarray(values, dtype=float)
        delta = (numbers[:, None] - numbers[None, :]) ** 2
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return math.nan
    return float(1.0 - (n - 1) * (coincidence * delta).sum() / expected)


def agreement(table: pd.DataFrame, level: str = "nominal") -> dict[str, Any]:
    """Agreement summary: items with two or more raters, raters, Krippendorff's alpha, and Cohen's kappa
    for each pair of raters who share items (a DataFrame)."""
    table = table.drop_duplicates(["item", "rater"], keep="last")
    per_item = table.groupby("item")["rater"].nunique()
    shared = table[table["item"].isin(per_item[per_item >= 2].index)]
    return {
        "items": int((per_item >= 2).sum()),
        "raters": int(shared["rater"].nunique()),
        "alpha": krippendorff_alpha(shared, level) if len(shared) else math.nan,
        "kappa": pairwise_kappa(shared),
    }
