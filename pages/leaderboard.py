"""Leaderboard page: Bradley-Terry ratings with 95% intervals and ranks, the stopping rule (is each pair of
neighbours separated, about how many votes would settle the ranking), win rates, online Elo, Likert means, battles
per pair, position bias, inter-rater agreement, raters' reasons, and downloads of the exports.

Filters by rater, checkpoint, generation settings and backend (what made the outputs: transformers, llama.cpp, or
"unknown" for outputs stored before backends were recorded; a vote counts when both its outputs match) apply to
everything on the page; "Rank" chooses the contestants: checkpoints, generation settings, or each checkpoint under
each settings. "Whose votes" counts people's votes only by default; LLM judges' votes (raters named "judge:<model>",
from `python -m workbench judge`) count when asked, and the section "LLM judges against the people" shows how often
each judge agrees with the people, measured as in the MT-bench paper (workbench/ratings/agreement.py). One visitor's
votes on a pair of contestants count for at most WORKBENCH_RATER_CAP; the owner's section "Raters" shows votes per
rater, what each counts for, and raters whose votes disagree with everyone else's far beyond chance
(workbench/ratings/raters.py), and drops a rater or counts them again (admin: their votes stay in the store).
Widgets and wiring only: the numbers come from workbench/ratings/snapshot.py (votes counted in the database, re-read
only when a vote arrives, standings cached per selection) over workbench/ratings/leaderboard.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.ratings.agreement import judge_agreement
from workbench.ratings.leaderboard import filter_ratings, win_rate_cells
from workbench.ratings.raters import ALPHA
from workbench.ratings.snapshot import ranked, raters_of, snapshot
from workbench.ratings.views import BOOTSTRAP, SEED, view_counts, views_note
from workbench.store import is_judge
from workbench.views import plots

EXPORTS = {
    "votes": "Pairwise votes",
    "likert": "Likert scores",
    "generations": "Generations (every stored output)",
    "battles": "Battles (FastChat clean-battle form)",
    "preferences": "Preference pairs (TRL DPO: prompt / chosen / rejected)",
    "corrections": "Corrections (edited chat replies as SFT examples)",
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
        "Logistic fit on the Elo scale (ties count half, as in FastChat) from a prior of 1000 +- 200 points, so a "
        f"few votes cannot move a rating far; 95% intervals: the wider of {BOOTSTRAP} bootstrap resamples' and the "
        "posterior's. Models whose intervals overlap share a rank; under 10 votes a model is marked “too few "
        "votes”. Online Elo (K=4) is shown for reference."
    )
    st.plotly_chart(plots.leaderboard_chart(result.board), key="lb-chart")
    places = {"rating": 1, "lower": 1, "upper": 1, "elo": 1}
    common.table(result.board.round(places | {"win_rate": 3}), places=places, hide_index=True, key="lb-board")
    _stopping(result.settlement)
    # One under the other: side by side, each heatmap's columns were too narrow for checkpoint names.
    st.subheader("Win rates")
    st.plotly_chart(plots.win_rate_heatmap(result.matrix, result.counts), key="lb-winrate")
    st.subheader("Battles per pair")
    st.plotly_chart(plots.count_heatmap(result.counts), key="lb-counts")
    st.caption("Win rate of the row model against the column model (ties count as not won), and their battles.")
    st.dataframe(win_rate_cells(result.matrix, result.counts), key="lb-matrix")
    _bias(result.bias)
    _agreement("Agreement between raters (pairwise)", result.agreement)


def _stopping(rule) -> None:
    """The stopping rule: settled or not, and each pair of neighbours (workbench/ratings/settle.py)."""
    st.subheader("Stopping rule")
    (st.success if rule.settled else st.info)(rule.summary(), icon=":material/flag:")
    st.caption(
        "Neighbours are separated when the 95% interval of their difference excludes zero (gap ± margin; two "
        "intervals on the chart may overlap a little and still be separated). Votes needed is an estimate: "
        "margins narrow as 1/sqrt(votes). WORKBENCH_SETTLE_HALF_WIDTH also settles neighbours whose intervals "
        "are both narrower than ±that many points. The Arena serves only pairs still unsettled."
    )
    if len(rule.pairs):
        st.dataframe(rule.table(), hide_index=True, key="lb-settle")


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
RATER_KINDS = {"humans": "People", "judges": "LLM judges", "all": "Everyone"}


def _rater_kind() -> str:
    chosen = st.segmented_control(
        "Whose votes",
        list(RATER_KINDS),
        format_func=RATER_KINDS.get,
        default="humans",
        key="lb-rater-kind",
        help="People's votes only, unless asked: LLM judges vote as raters named judge:<model> "
        "(python -m workbench judge).",
    )
    return chosen or "humans"


@st.cache_data(max_entries=16, show_spinner=False)
def _judge_numbers(_store, url: str, mark: tuple, judge: str) -> dict:
    """One judge's agreement with the people, computed once per (store, ratings mark, judge)."""
    return judge_agreement(_store.pair_verdicts(), judge)


def _share(value: float, n: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%} of {n}"


def _judges(store, snap, judges: list[str]) -> None:
    """The agreement view: a judge against the people, beside the people against each other, on the same pairs."""
    st.subheader("LLM judges against the people")
    judge = st.selectbox("Judge", judges, key="lb-judge") if len(judges) > 1 else judges[0]
    s = _judge_numbers(store, snap.url, snap.mark, judge)
    consistency = s["position_consistency"]
    orders = (
        "none of them records its verdicts in both orders"
        if math.isnan(consistency)
        else f"the same verdict in both orders for {consistency:.0%} of them (a verdict that flips is a tie)"
    )
    st.caption(
        f"{judge}: {s['verdicts']} verdict{'s' if s['verdicts'] != 1 else ''}; {orders}. "
        "One comparison per person's vote and judge's verdict on the same two outputs, as in the MT-bench paper: "
        "with ties (a, b or tie; both bad is a tie), without ties (only where both are decisive), and Cohen's "
        "kappa; people against people on the same pairs (two different raters) for scale."
    )
    if not s["pairs"]:
        st.caption("No pair has both this judge's verdict and a person's vote yet.")
        return
    table = {
        "": ["pairs", "comparisons", "agreement with ties", "agreement without ties", "Cohen's kappa"],
        "judge vs people": [
            s["pairs"],
            s["comparisons"],
            _share(s["agreement_with_ties"], s["comparisons"]),
            _share(s["agreement_without_ties"], s["comparisons_without_ties"]),
            "n/a" if math.isnan(s["kappa"]) else f"{s['kappa']:.3f}",
        ],
        "people vs people": [
            s["human_human_pairs"],
            s["human_human_comparisons"],
            _share(s["human_human_with_ties"], s["human_human_comparisons"]),
            _share(s["human_human_without_ties"], s["human_human_comparisons_without_ties"]),
            "n/a" if math.isnan(s["human_human_kappa"]) else f"{s['human_human_kappa']:.3f}",
        ],
    }
    st.dataframe({k: [str(v) for v in column] for k, column in table.items()}, hide_index=True, key="lb-judge-table")


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


def _raters(store, snap, by: str, cap: int) -> None:
    """The owner's view of the raters: votes per rater, what each counts for, the outlier test; drop a rater or
    count them again (admin)."""
    st.subheader("Raters")
    token = common.admin_token_box(st, "lb-raters-token")
    asked = token is None or bool(token)  # a blank token box is no guess: the throttle is not asked
    refusal = common.admin_refusal(token) if asked else "Enter the admin token to see them."
    if refusal is not None:
        st.caption(f"Votes per rater, and dropping a rater, are for the owner. {refusal}")
        return
    table = raters_of(snap, by=by, cap=cap)
    if table.empty:
        st.caption("No pairwise votes yet.")
        return
    flagged = list(table.loc[table["flagged"], "rater"])
    if flagged:
        st.warning(
            f"Votes against everyone else far beyond chance: {', '.join(flagged)}. Look at their votes before "
            "dropping anyone: a rater with a different taste looks the same.",
            icon=":material/flag:",
        )
    st.caption(
        f"counted: what a rater's votes weigh in the ratings (one visitor's votes on a pair count for at most {cap}; "
        "a dropped rater 0); share: of all votes counted. against: decisive votes for the side everyone else's "
        "ratings favour less, beside what chance gives (expected); flagged when the p-value is below the Holm "
        f"threshold for {ALPHA:.0%} over all raters tested (at least 5 decisive votes)."
    )
    common.table(
        table, places={"counted": 1, "share": 3, "expected": 1, "p_value": 4}, hide_index=True, key="lb-raters"
    )
    left, middle, right = st.columns([3, 3, 1], vertical_alignment="bottom")
    rater = left.selectbox("Rater", list(table["rater"]), key="lb-drop-rater")
    dropped = rater in snap.dropped
    reason = None if dropped else middle.text_input("Why (optional)", key="lb-drop-reason", max_chars=500)
    if right.button("Count again" if dropped else "Drop", key="lb-drop"):
        try:
            if dropped:
                store.undrop_rater(rater, token=token, who=common.caller())
            else:
                store.drop_rater(rater, reason=reason, token=token, who=common.caller())
        except WorkbenchError as exc:
            common.show_error(exc)
        else:
            st.rerun()


def _downloads(store) -> None:
    st.subheader("Download")
    left, middle, right = st.columns([2, 1, 2])
    what = left.selectbox("What", list(EXPORTS), format_func=EXPORTS.get, key="lb-export")
    fmt = middle.radio("Format", ["jsonl", "csv"], horizontal=True, key="lb-format")
    token = None
    if store.access.token is not None:
        token = right.text_input("Admin token", type="password", key="lb-token")
    try:
        store.check_admin(token, common.caller())
    except WorkbenchError as exc:
        if token:
            common.show_error(exc)
        elif store.access.token is None:
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


def _child_against_parent(store) -> None:
    """A checkpoint's verdict against its parent with its evidence and rule, and promote (the owner's)."""
    from workbench.studio.lineage import children, compare_parent
    from workbench.studio.promote import default_checkpoint, promote

    config = common.settings()
    st.subheader("Child against parent")
    st.caption(
        "Is an adapter better than what it was trained from (its run's previous checkpoint, the adapter its run "
        f"started from, or the base model)? New visitors start on **{default_checkpoint(config)}**."
    )
    names: list[str] = []
    with common.user_errors():  # a served model that is unusable: its sentence, not a traceback
        names = children(config)  # every served family's adapters, as the chat names them
    if not names:
        st.caption("No adapter yet: train one on the Gradio app's Fine-tune tab or with `workbench train`.")
        return
    checkpoint = st.selectbox("Adapter", names, key="lb-verdict-checkpoint")
    if st.toggle("Compare with its parent", key="lb-verdict-show"):  # on demand: it bootstraps the suites' items
        with common.user_errors():
            st.markdown(compare_parent(config, store, checkpoint).markdown())
    left, middle, right = st.columns([2, 1, 1])
    token = common.admin_token_box(left, "lb-verdict-token")
    force = middle.checkbox("Even if worse", key="lb-verdict-force")
    if right.button("Make it the default", key="lb-verdict-promote"):
        refusal = common.admin_refusal(token)
        if refusal is not None:
            common.show_error(refusal)
            return
        with common.user_errors():
            st.success(promote(config, store, checkpoint, force=force).summary())


def main() -> None:
    st.title("Leaderboard")
    store = common.store()
    snap = snapshot(store)
    by = _rank_by()
    kind = _rater_kind()
    options = snap.options()
    of_kind = [r for r in options["raters"] if kind == "all" or is_judge(r) == (kind == "judges")]
    chosen = _filters({**options, "raters": of_kind})
    half_width = common.settings().settle_half_width or None  # the stopping rule's target, if the owner set one
    cap = common.settings().rater_cap
    view = ranked(
        snap, by=by, rater_kind=kind, bootstrap=BOOTSTRAP, seed=SEED, half_width=half_width, cap=cap, **chosen
    )
    result, likert = view.standings, view.likert
    raters = view.raters
    counts = st.columns(3)
    counts[0].metric("Pairwise votes", result.votes)
    counts[1].metric("Likert scores", result.scores)
    counts[2].metric("Raters", len(raters))
    # Each view says how many votes the others hold (a settings pair's vote is not counted among checkpoints).
    st.caption(views_note(view_counts(filter_ratings(snap.tallies, **chosen)), by))
    if not result.votes and not result.scores:
        st.info("No ratings match yet: rate outputs on the Rate page (or in the Gradio app's Arena tab).")
    if result.votes:
        _pairwise(result)
    if result.scores:
        _likert(result)
    judges = [r for r in options["raters"] if is_judge(r)]
    if judges:
        _judges(store, snap, judges)
    _reasons(store, view.reason_ids, likert)
    _raters(store, snap, by, cap)
    st.divider()
    _child_against_parent(store)
    st.divider()
    _downloads(store)


main()
