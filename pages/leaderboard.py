"""Leaderboard page: Bradley-Terry ratings with 95% bootstrap intervals and ranks, win rates, online Elo, Likert
means, battles per pair, position bias, inter-rater agreement, raters' reasons, and downloads of the exports.

Filters by rater, checkpoint, generation settings and backend (what made the outputs: transformers, llama.cpp, or
"unknown" for outputs stored before backends were recorded; a vote counts when both its outputs match) apply to
everything on the page; "Rank" chooses the contestants: checkpoints, generation settings, or each checkpoint under
each settings. Widgets and wiring only: the numbers come from workbench/ratings/snapshot.py (votes counted in the
database, re-read only when a vote arrives, standings cached per selection) over workbench/ratings/leaderboard.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.ratings.snapshot import ranked, snapshot
from workbench.ui import plots

BOOTSTRAP, SEED = 1000, 0
EXPORTS = {
    "votes": "Pairwise votes",
    "likert": "Likert scores",
    "generations": "Generations (every stored output)",
    "battles": "Battles (FastChat clean-battle form)",
    "preferences": "Preference pairs (TRL DPO: prompt / chosen / rejected)",
}


def _filters(options: dict[str, list[str]]) -> dict[str, list[str]]:
    raters, checkpoints, settings, backends = st.columns([2, 2, 3, 2])
    return {
        "raters": raters.multiselect("Raters", options["raters"], key="lb-raters", placeholder="All raters"),
        "checkpoints": checkpoints.multiselect(
            "Checkpoints", options["checkpoints"], key="lb-checkpoints", placeholder="All checkpoints"
        ),
        "settings": settings.multiselect(
            "Generation settings", options["settings"], key="lb-settings", placeholder="All settings"
        ),
        "backends": backends.multiselect(
            "Backends",
            options["backends"],
            key="lb-backends",
            placeholder="All backends",
            help="What generated the outputs; a vote counts when both of its outputs come from a chosen backend.",
        ),
    }


def _pairwise(result) -> None:
    st.subheader("Bradley-Terry ratings")
    st.caption(
        f"Logistic fit on the Elo scale (ties count half, as in FastChat), 95% intervals from {BOOTSTRAP} bootstrap "
        "resamples; models whose intervals overlap share a rank. Online Elo (K=4) is shown for reference."
    )
    st.plotly_chart(plots.leaderboard_chart(result.board), key="lb-chart")
    places = {"rating": 1, "lower": 1, "upper": 1, "elo": 1}
    common.table(result.board.round(places | {"win_rate": 3}), places=places, hide_index=True, key="lb-board")
    left, right = st.columns(2)
    with left:
        st.subheader("Win rates")
        st.plotly_chart(plots.win_rate_heatmap(result.matrix, result.counts), key="lb-winrate")
    with right:
        st.subheader("Battles per pair")
        st.plotly_chart(plots.count_heatmap(result.counts), key="lb-counts")
    st.caption("Win rate of the row model against the column model (ties count as not won).")
    st.caption(f"{common.MISSING} = no battles between the two.")
    common.table(result.matrix.rename_axis("model"), key="lb-matrix")
    _bias(result.bias)
    _agreement("Agreement between raters (pairwise)", result.agreement)


def _bias(bias: dict) -> None:
    st.subheader("Position bias")
    if not bias["decisive"]:
        st.caption("No decisive votes yet (only ties and both-bad).")
        return
    st.metric("Left output won", f"{bias['rate']:.0%}", border=True, width="content")
    st.caption(
        f"The output shown on the left won {bias['left_wins']} of {bias['decisive']} decisive votes (95% Wilson "
        f"interval {bias['lower']:.0%} to {bias['upper']:.0%}; {bias['ties']} ties or both bad). "
        "An interval that excludes 50% means raters favour a side."
    )


def _agreement(title: str, summary: dict) -> None:
    st.subheader(title)
    if not summary or not summary["items"]:
        st.caption("No item has ratings from two raters yet.")
        return
    alpha = summary["alpha"]
    st.caption(
        f"{summary['items']} item{'s' if summary['items'] != 1 else ''} rated by {summary['raters']} raters; "
        f"Krippendorff's alpha "
        f"{'n/a' if math.isnan(alpha) else f'{alpha:.3f}'} (1 = perfect agreement, 0 = chance)."
    )
    common.table(summary["kappa"], hide_index=True)


def _likert(result) -> None:
    st.subheader("Likert scores")
    st.caption(f"Mean score per checkpoint with a 95% bootstrap interval ({BOOTSTRAP} resamples).")
    st.plotly_chart(plots.likert_chart(result.likert), key="lb-likert-chart")
    common.table(result.likert, hide_index=True, key="lb-likert")
    _agreement("Agreement between raters (scores)", result.likert_agreement)


RANK_BY = {"checkpoint": "Checkpoints", "settings": "Generation settings", "both": "Checkpoint + settings"}


def _rank_by() -> str:
    chosen = st.segmented_control(
        "Rank",
        list(RANK_BY),
        format_func=RANK_BY.get,
        default="checkpoint",
        key="lb-by",
        help="What the ratings rank: checkpoints, the generation settings (pairs that differ only in settings "
        "count here), or each checkpoint under each settings. Votes between two equal contestants are left out.",
    )
    return chosen or "checkpoint"


def _reasons(store, reason_ids, likert) -> None:
    rows = []
    if reason_ids:
        for b in store.vote_reasons(reason_ids):
            b = SimpleNamespace(**b)
            verdict = {"model_a": f"{b.model_a} won", "model_b": f"{b.model_b} won", "tie": "a tie"}.get(
                b.winner, "both bad"
            )
            rows.append((b.tstamp, f"{b.judge} on {b.model_a} (left) vs {b.model_b}, {verdict}: {b.reason}"))
    if len(likert):
        for s in likert[likert["comment"].notna()].itertuples():
            rows.append((s.tstamp, f"{s.rater} gave {s.model} {s.score}: {s.comment}"))
    if not rows:
        return
    st.subheader("Reasons and comments")
    st.caption("The newest 20, as the raters typed them.")
    for _, line in sorted(rows, reverse=True)[:20]:
        st.text(line)


def _downloads(store) -> None:
    st.subheader("Download")
    left, middle, right = st.columns([2, 1, 2])
    what = left.selectbox("What", list(EXPORTS), format_func=EXPORTS.get, key="lb-export")
    fmt = middle.radio("Format", ["jsonl", "csv"], horizontal=True, key="lb-format")
    token = None
    if store.admin_token is not None:
        token = right.text_input("Admin token", type="password", key="lb-token")
    try:
        store.check_admin(token, common.client())
    except WorkbenchError as exc:
        if token:
            common.show_error(exc)
        elif store.admin_token is None:
            st.caption(str(exc))
        else:
            st.caption("Exports need the admin token (WORKBENCH_ADMIN_TOKEN is set on this server).")
        return
    st.download_button(
        f"Download {what}.{fmt}",
        data=lambda: store.export_bytes(what, fmt, token=token),
        file_name=f"workbench-{what}.{fmt}",
        mime="text/csv" if fmt == "csv" else "application/jsonl",
        key="lb-download",
        icon=":material/download:",
    )


def main() -> None:
    st.title("Leaderboard")
    store = common.store()
    snap = snapshot(store)
    by = _rank_by()
    chosen = _filters(snap.options())
    view = ranked(snap, by=by, bootstrap=BOOTSTRAP, seed=SEED, **chosen)
    result, likert = view.standings, view.likert
    raters = view.raters
    counts = st.columns(3)
    counts[0].metric("Pairwise votes", result.votes)
    counts[1].metric("Likert scores", result.scores)
    counts[2].metric("Raters", len(raters))
    if not result.votes and not result.scores:
        st.info("No ratings match yet: rate outputs on the Rate page (or in the Gradio app's Arena tab).")
    if result.votes:
        _pairwise(result)
    if result.scores:
        _likert(result)
    _reasons(store, view.reason_ids, likert)
    st.divider()
    _downloads(store)


main()
