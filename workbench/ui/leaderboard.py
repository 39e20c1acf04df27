"""The Leaderboard tab: what the Arena's votes say, inside the Gradio app (a Space runs nothing else).

Bradley-Terry ratings with 95% bootstrap intervals, ranks and vote counts, ranking checkpoints, generation settings
or both; each view says how many votes the other holds (a fresh Space's first votes all compare settings). The
numbers are the dashboard's (`pages/leaderboard.py`, the owner's richer view with filters, win rates, agreement and
downloads): both call `workbench.ratings.snapshot.ranked` with `BOOTSTRAP` and `SEED` of
`workbench.ratings.views`, and one visitor's votes on a pair of contestants count for at most WORKBENCH_RATER_CAP
(`workbench.ratings.raters`). Below them: the chat's likes and dislikes per checkpoint, whether votes survive a
restart here, and for the owner only, votes per rater with the raters whose votes disagree with everyone else's far
beyond chance (dropping one is the dashboard's or `workbench leaderboard --drop`).

API endpoint:
    leaderboard(by) -> (summary, board, chart, likes, persistence, raters_note, raters)   # by: "checkpoint" | ...
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.ratings.views import BOOTSTRAP, SEED, VIEW_NAMES, view_counts, views_note
from workbench.ui.context import AppContext
from workbench.views.markup import plain_markdown

COLUMNS = ["rank", "model", "rating", "lower", "upper", "battles", "wins", "losses", "ties", "win_rate"]
EMPTY = "No votes yet: vote in the Arena tab and the ratings appear here."


def stopping_line(view) -> str:
    """The line that says whether the ranking has settled or how many votes it still needs: the stopping rule's
    sentence (`workbench.ratings.settle`) for `view` (a `workbench.ratings.snapshot.View`), the dashboard's too."""
    settlement = view.standings.settlement
    return settlement.summary() if settlement is not None and view.standings.votes else ""


def board_table(board: pd.DataFrame) -> pd.DataFrame:
    """The ratings table as the tab shows it: rank first, ratings to one decimal, win rate to three."""
    if board.empty:
        return pd.DataFrame(columns=COLUMNS)
    shown = board[[c for c in COLUMNS if c in board.columns]].copy()
    return shown.round({"rating": 1, "lower": 1, "upper": 1, "win_rate": 3}).sort_values(
        ["rank", "rating"], ascending=[True, False]
    )


def standings(store, by: str, half_width: int | None = None, cap: int = 0):
    """(the view, the counts per view) for the whole store's votes ranked `by`, one visitor's votes on a pair
    counting for at most `cap`."""
    from workbench.ratings.snapshot import ranked, snapshot

    if by not in VIEW_NAMES:
        raise WorkbenchError(f"The leaderboard ranks {', '.join(VIEW_NAMES)}, not {by!r}.")
    snap = snapshot(store)
    view = ranked(snap, by=by, bootstrap=BOOTSTRAP, seed=SEED, half_width=half_width, cap=cap)
    return view, view_counts(snap.tallies)


def _names(names: list[str]) -> str:
    """Up to ten rater names, Markdown-escaped (a typed name may hold _ or *)."""
    return ", ".join(plain_markdown(n) for n in names[:10]) + (" …" if len(names) > 10 else "")


def raters_note(table: pd.DataFrame, cap: int) -> str:
    """The owner's sentence above the table of raters: how many, the cap, and who is flagged or dropped."""
    if table.empty:
        return ""
    flagged = list(table.loc[table["flagged"], "rater"])
    dropped = list(table.loc[table["dropped"], "rater"])
    counted = f"count for at most {cap}" if cap else "count in full (no cap)"
    lines = [f"**Raters** (you see this as the owner): {len(table)}; one visitor's votes on a pair {counted}."]
    if flagged:
        lines.append(
            f"**{len(flagged)} vote{'s' if len(flagged) == 1 else ''} against everyone else far beyond chance:** "
            f"{_names(flagged)}. Look at their votes; drop a rater on the dashboard's Leaderboard page or with "
            "`python -m workbench leaderboard --drop NAME`."
        )
    if dropped:
        lines.append(f"Dropped (votes kept, not counted): {_names(dropped)}.")
    return "\n\n".join(lines)


def summary(view, counts: dict[str, int], by: str) -> str:
    """The sentences above the table: votes and raters counted, where the other views' votes are, the stopping
    rule's line."""
    result = view.standings
    raters = len(view.raters)
    lines = [
        f"**{result.votes}** pairwise vote{'' if result.votes == 1 else 's'} by {raters} "
        f"rater{'' if raters == 1 else 's'} ranked by {VIEW_NAMES[by].lower()}. {views_note(counts, by)}"
    ]
    stop = stopping_line(view)
    if stop:
        lines.append(stop)
    if not result.votes:
        lines.append(EMPTY)
    return "\n\n".join(lines)


def make_refresh_fn(ctx: AppContext):
    """The function behind the tab's refresh, its Rank choice and the leaderboard endpoint."""
    from workbench.store.sync import persistence_note
    from workbench.ui.stores import shared_store
    from workbench.views import plots

    def refresh(by: str = "checkpoint", request: gr.Request | None = None):
        owner = ctx.visitor(request).owner
        cap = ctx.settings.rater_cap
        try:
            store = shared_store(ctx.settings)
            view, counts = standings(store, by, ctx.settings.settle_half_width or None, cap)
            likes = store.reaction_counts()
            table = _raters(store, by, cap) if owner else None
        except WorkbenchError as exc:
            return plain_markdown(str(exc)), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        board = view.standings.board
        chart = plots.leaderboard_chart(board) if len(board) and view.standings.votes else None
        shown = gr.update(value=chart, visible=chart is not None)
        note = persistence_note(ctx.settings, owner=owner)
        hidden = table is None or table.empty
        raters = gr.update(value=None if hidden else table.round(RATER_PLACES), visible=not hidden)
        return (
            summary(view, counts, by),
            board_table(board),
            shown,
            likes,
            note,
            raters_note(table if table is not None else pd.DataFrame(), cap),
            raters,
        )

    return refresh


RATER_PLACES = {"counted": 1, "share": 3, "expected": 1, "p_value": 4}


def _raters(store, by: str, cap: int) -> pd.DataFrame:
    """The owner's table of raters (people's votes) for the votes ranked `by`."""
    from workbench.ratings.snapshot import raters_of, snapshot

    return raters_of(snapshot(store), by=by, cap=cap)


def make_pick_fn(ctx: AppContext):
    """On load: rank settings when no vote compares checkpoints yet but some compare settings (a fresh Space)."""
    from workbench.ui.stores import shared_store

    def pick(by: str) -> str:
        try:
            from workbench.ratings.snapshot import snapshot

            counts = view_counts(snapshot(shared_store(ctx.settings)).tallies)
        except WorkbenchError:
            return by
        return "settings" if by == "checkpoint" and not counts["checkpoint"] and counts["settings"] else by

    return pick


def build_leaderboard_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Leaderboard tab and wire its events (call inside a gr.Blocks / gr.Tab context).

    Returns the components, `refresh_args` (for the tab's select event and `demo.load`) and `pick_args`.
    """
    from workbench.store.sync import persistence_note

    gr.Markdown(
        "Bradley-Terry ratings from the Arena's blind votes (ties count half), with 95% intervals from "
        f"{BOOTSTRAP} bootstrap resamples; models whose intervals overlap share a rank.",
        elem_id="lb-intro",
    )
    with gr.Row():
        by = gr.Radio(
            [(name, key) for key, name in VIEW_NAMES.items()],
            value="checkpoint",
            label="Rank",
            info="What the votes rank: checkpoints, generation settings, or each checkpoint under each settings.",
            scale=4,
            elem_id="lb-by",
        )
        refresh = gr.Button("Refresh", size="sm", scale=1, elem_id="lb-refresh")
    note = gr.Markdown(EMPTY, elem_id="lb-summary")
    board = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="lb-board", label="Ratings")
    chart = gr.Plot(visible=False, elem_id="lb-chart", show_label=False)
    gr.Markdown("### Chat feedback\nLikes and dislikes of chat replies, per checkpoint (not blind: not ranked).")
    likes = gr.Dataframe(
        pd.DataFrame(columns=["model", "likes", "dislikes"]), interactive=False, elem_id="lb-likes", show_label=False
    )
    persistence = gr.Markdown(persistence_note(ctx.settings, owner=False), elem_id="lb-persistence")
    raters_text = gr.Markdown("", elem_id="lb-raters-note")  # the owner's only: filled when the owner refreshes
    raters = gr.Dataframe(interactive=False, visible=False, elem_id="lb-raters", label="Votes per rater")
    refresh_args = {
        "fn": make_refresh_fn(ctx),
        "inputs": [by],
        "outputs": [note, board, chart, likes, persistence, raters_text, raters],
        "show_progress": "hidden",
    }
    refresh.click(**refresh_args, api_name="leaderboard", concurrency_limit=None)
    by.input(**refresh_args, api_visibility="private", concurrency_limit=None)
    pick_args = {"fn": make_pick_fn(ctx), "inputs": [by], "outputs": [by], "api_visibility": "private"}
    return SimpleNamespace(by=by, board=board, note=note, refresh_args=refresh_args, pick_args=pick_args)
