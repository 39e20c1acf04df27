"""Inter-rater agreement where items have several raters: Cohen's kappa per pair of raters, Krippendorff's alpha.

Input is a long DataFrame with one row per (item, rater, label). `pairwise_labels(battles)` makes one from
pairwise votes (the item is the prompt and the two models, the label which model won, so left/right order
does not matter); `likert_labels(likert)` from Likert scores (the item is the generation).

    table = pairwise_labels(store.battles())
    agreement(table)              # {"items": .., "raters": .., "alpha": .., "kappa": DataFrame of rater pairs}

An LLM judge against the people, as the MT-bench paper measures it (Zheng et al. 2023, section 4.2; FastChat's
`compute_agreement.py`): `judge_agreement(store.pair_verdicts(), "judge:base")` makes one comparison per (person's
vote, judge's verdict) on the same two generations and gives the share that agree with ties (a, b or tie; "both
bad" is a tie) and without ties (only comparisons where both are decisive), Cohen's kappa, the judge's position
consistency, and the same shares between people (two different raters) on the same pairs.

Pure numpy/pandas (no sklearn or krippendorff package in the environment); the statistics are checked
against hand-computed and published values in tests/ratings/test_scoring.py and tests/ratings/test_agreement.py.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from workbench.store.records import is_judge


def pairwise_labels(battles: pd.DataFrame) -> pd.DataFrame:
    """(item, rater, label) rows from battles: item = question and the two models in sorted order (plus the
    settings when present), numbered from 0; label = the winning model's name, "tie" or "bothbad"."""
    a, b = (battles[c].astype(str).to_numpy(dtype=object) for c in ("model_a", "model_b"))
    winner = np.select(
        [battles["winner"] == "model_a", battles["winner"] == "model_b", battles["winner"] == "tie"],
        [a, b, "tie"],
        default="bothbad",
    )
    swapped = a > b
    question = battles["question_id"].astype(str).to_numpy(dtype=object) if "question_id" in battles else ""
    keys = {"question": question, "low": np.where(swapped, b, a), "high": np.where(swapped, a, b)}
    if "settings_a" in battles and "settings_b" in battles:  # the settings of the lower-named model first
        sa, sb = (_settings_key(battles[c]).to_numpy(dtype=object) for c in ("settings_a", "settings_b"))
        keys["settings_low"], keys["settings_high"] = np.where(swapped, sb, sa), np.where(swapped, sa, sb)
    # Numbered groups rather than joined strings: the same items, without building 100,000 strings.
    codes = [pd.factorize(np.broadcast_to(v, len(battles)))[0] for v in keys.values()]
    if not len(battles):
        item = np.zeros(0, dtype=np.int64)
    elif math.prod(int(c.max()) + 1 for c in codes) < 2**62:  # one integer per item, numbered by a hash
        item = pd.factorize(np.ravel_multi_index(codes, [int(c.max()) + 1 for c in codes]))[0]
    else:
        item = np.unique(np.column_stack(codes), axis=0, return_inverse=True)[1].ravel()
    return pd.DataFrame({"item": item, "rater": battles["judge"].to_numpy(), "label": winner})


def _settings_key(column: pd.Series) -> pd.Series:
    """Settings as text: labels (the store's tallies and sequences) as they are, dicts as canonical JSON."""
    if column.map(type).eq(str).all():
        return column.astype(str)
    return column.map(lambda s: json.dumps(s, sort_keys=True, default=str))


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
    raters = sorted(wide.columns, key=str)
    columns = ["rater_1", "rater_2", "items", "kappa"]
    if wide.empty:
        return pd.DataFrame(columns=columns)
    wide = wide[raters]
    # All pairs at once (a loop of `cohen_kappa` over 50 raters' 1,225 pairs took seconds): one-hot labels,
    # then each pair's items in common, agreements, and label counts over the items in common.
    codes, _ = pd.factorize(wide.to_numpy().ravel(), use_na_sentinel=True)
    codes = codes.reshape(wide.shape)
    onehot = (codes[..., None] == np.arange(codes.max() + 1)).astype(np.float64)
    rated = (codes >= 0).astype(np.float64)
    shared = rated.T @ rated
    agree = np.einsum("irl,isl->rs", onehot, onehot)
    counts = np.einsum("irl,is->rsl", onehot, rated)
    rows = []
    for i, j in itertools.combinations(range(len(raters)), 2):
        n = shared[i, j]
        if n >= max(1, min_items):
            expected = float((counts[i, j] * counts[j, i]).sum() / (n * n))
            kappa = math.nan if expected >= 1 else (agree[i, j] / n - expected) / (1 - expected)
            rows.append({"rater_1": raters[i], "rater_2": raters[j], "items": int(n), "kappa": kappa})
    return pd.DataFrame(rows, columns=columns)


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
    # Per item, the count of each label; items with one label pair with nothing and are left out.
    items, _ = pd.factorize(table["item"])
    counts = np.zeros((items.max() + 1 if len(items) else 0, len(values)))
    np.add.at(counts, (items, table["label"].map(index).to_numpy()), 1.0)
    m = counts.sum(1)
    counts, weight = counts[m >= 2], 1.0 / (m[m >= 2] - 1)
    coincidence = (counts * weight[:, None]).T @ counts - np.diag((counts * weight[:, None]).sum(0))
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


def _label(winner: Any) -> str:
    """A vote's verdict about generations a and b: "a", "b" or "tie" ("both bad" counts as a tie, as in the paper)."""
    return winner if winner in ("a", "b") else "tie"


def _shares(left: pd.Series, right: pd.Series) -> dict[str, Any]:
    """Agreement of paired labels with ties, without ties (both decisive), and their counts."""
    decisive = (left != "tie") & (right != "tie")
    same = left.to_numpy() == right.to_numpy()
    n, m = len(left), int(decisive.sum())
    return {
        "comparisons": n,
        "with_ties": float(same.mean()) if n else math.nan,
        "decisive": m,
        "without_ties": float(same[decisive.to_numpy()].mean()) if m else math.nan,
    }


def judge_agreement(verdicts: pd.DataFrame, judge: str) -> dict[str, Any]:
    """How often one LLM judge agrees with the people, beside how often people agree with each other.

    Args:
        verdicts: One row per vote with generation_a_id, generation_b_id, winner ("a", "b", "tie", "bothbad")
            and rater, such as `Store.pair_verdicts()`; its first/second columns (a judge's verdict in each order)
            give the position consistency.
        judge: The judge's rater name ("judge:<model>"); people are the raters whose names are not a judge's.

    Returns:
        pairs: pairs of generations with the judge's verdict and at least one person's vote.
        comparisons / comparisons_without_ties: (person's vote, judge's verdict) comparisons, all / both decisive.
        agreement_with_ties / agreement_without_ties: the shares of those comparisons that agree (NaN when none).
        kappa: Cohen's kappa of judge against people over the comparisons (labels a, b, tie).
        verdicts / position_consistency: the judge's verdicts, and the share of those that record both orders
            whose verdict did not change with the order (NaN when none record them).
        human_human_pairs / human_human_comparisons / human_human_comparisons_without_ties: the shared pairs
            that two or more people voted on, and the comparisons between two different people's votes there.
        human_human_with_ties / human_human_without_ties / human_human_kappa: the same measures between people
            (kappa over each comparison in both orders, so that neither person is the reference).
    """
    frame = verdicts.assign(
        label=verdicts["winner"].map(_label),
        pair=list(zip(verdicts["generation_a_id"], verdicts["generation_b_id"], strict=True)),
    )
    mine = frame[frame["rater"] == judge].drop_duplicates("pair", keep="last")
    people = frame[~frame["rater"].map(is_judge).astype(bool)].drop_duplicates(["pair", "rater"], keep="last")
    compared = people.merge(mine[["pair", "label"]], on="pair", suffixes=("_human", "_judge"))
    judged = _shares(compared["label_judge"], compared["label_human"])
    result: dict[str, Any] = {
        "judge": judge,
        "pairs": int(compared["pair"].nunique()),
        "comparisons": judged["comparisons"],
        "comparisons_without_ties": judged["decisive"],
        "agreement_with_ties": judged["with_ties"],
        "agreement_without_ties": judged["without_ties"],
        "kappa": cohen_kappa(compared["label_judge"], compared["label_human"]) if len(compared) else math.nan,
        "verdicts": len(mine),
        "position_consistency": _consistency(mine),
    }
    return {**result, **_human_human(people[people["pair"].isin(set(compared["pair"]))])}


def _consistency(mine: pd.DataFrame) -> float:
    if not {"first", "second"} <= set(mine.columns):
        return math.nan
    both = mine.dropna(subset=["first", "second"])
    return float((both["first"] == both["second"]).mean()) if len(both) else math.nan


def _human_human(people: pd.DataFrame) -> dict[str, Any]:
    """Every two different people's votes on the same pair, compared (FastChat's human-human setup)."""
    rows = people[["pair", "rater", "label"]]
    both = rows.merge(rows, on="pair", suffixes=("_1", "_2"))
    both = both[both["rater_1"].astype(str) < both["rater_2"].astype(str)]  # each two raters once
    shares = _shares(both["label_1"], both["label_2"])
    kappa = math.nan
    if len(both):
        kappa = cohen_kappa([*both["label_1"], *both["label_2"]], [*both["label_2"], *both["label_1"]])
    return {
        "human_human_pairs": int(both["pair"].nunique()),
        "human_human_comparisons": shares["comparisons"],
        "human_human_comparisons_without_ties": shares["decisive"],
        "human_human_with_ties": shares["with_ties"],
        "human_human_without_ties": shares["without_ties"],
        "human_human_kappa": kappa,
    }
