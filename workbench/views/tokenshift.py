"""What a checkpoint changed, drawn for both UIs: a reply's tokens coloured by how far their probability moved from
one checkpoint to another (a diverging scale: blue more likely, orange less likely, white unchanged), a table, a
one-line summary, and the bar chart of the tokens that moved most over a suite.

    rows = tokenshift.token_shift(engine, messages, reply, before="base", after="my-run")   # workbench.generation
    html = shift_html(rows, "base", "my-run")        # for st.html or gr.HTML; hover: both probabilities
    frame = shift_table(rows)                        # one row per token
    fig = moved_bars(studio.tokenshift.moved_most(readings), "base", "my-run")

Every token is HTML-escaped; the hover text is a `title` attribute (no script), so a screen reader and any browser
read both probabilities. Colour is never the only cue: the hover says the numbers and the direction in words.
Torch-free.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.views.plots import _esc, _layout
from workbench.views.tokenview import shown_token

SHIFT_FULL = 2.0  # nats at which the colour saturates: a token e^2 = 7.4 times more (or less) likely
RAISED_HUE, LOWERED_HUE = 213, 28  # blue and orange: a diverging pair that reads apart for red-green colour blindness
RAISED, LOWERED = "#4C78A8", "#F58518"  # the same two in the bar chart


def shift_colour(shift: float) -> str:
    """White for no change, deepening blue as a token grows more likely, orange as it grows less likely."""
    depth = min(abs(shift) / SHIFT_FULL, 1.0)
    hue = RAISED_HUE if shift > 0 else LOWERED_HUE
    return f"hsl({hue}, 80%, {97 - 35 * depth:.0f}%)"


def _times(shift: float) -> str:
    """A shift as words a person reads: "3.2× more likely", "2.0× less likely", "unchanged"."""
    ratio = math.exp(abs(shift))
    if ratio < 1.005:
        return "unchanged"
    shown = f"{ratio:.1f}" if ratio < 10 else f"{ratio:,.0f}"
    return f"{shown}× {'more' if shift > 0 else 'less'} likely"


def shift_hover(row: dict[str, Any], before: str, after: str) -> str:
    """One token's hover text: both probabilities, the shift in words and nats, each checkpoint's likeliest token."""
    return "\n".join(
        [
            f"{shown_token(row['token'])}: {_times(row['shift'])} under {after} ({row['shift']:+.2f} nats)",
            f"  {before}: {row['before']:.1%} (likeliest here: {shown_token(row['top_before'])})",
            f"  {after}: {row['after']:.1%} (likeliest here: {shown_token(row['top_after'])})",
        ]
    )


def legend_html(before: str, after: str) -> str:
    """The scale as a gradient with its ends and middle in words."""
    steps = [shift_colour(-SHIFT_FULL * (1 - i / 4)) for i in range(4)] + [
        shift_colour(SHIFT_FULL * i / 4) for i in range(5)
    ]
    cells = "".join(f'<span style="background:{c};padding:0 9px;">&nbsp;</span>' for c in steps)
    ratio = math.exp(SHIFT_FULL)
    return (
        '<div class="wb-shift-legend" style="font-size:0.8em;margin-top:4px;">'
        f"less likely under {html.escape(after)} (≤ 1/{ratio:.0f}×) {cells} more likely under {html.escape(after)} "
        f"(≥ {ratio:.0f}×) · white: as likely as under {html.escape(before)} · hover a token for both "
        "probabilities</div>"
    )


def shift_html(rows: Sequence[dict[str, Any]], before: str, after: str) -> str:
    """The reply as spans coloured by shift, each with its hover text, then the legend."""
    spans = []
    for row in rows:
        text = html.escape(row["token"]).replace("\n", "↵<br>")
        spans.append(
            f'<span class="wb-shift" style="background:{shift_colour(row["shift"])};" '
            f'title="{html.escape(shift_hover(row, before, after), quote=True)}">{text}</span>'
        )
    return (
        '<div class="wb-tokens" style="line-height:1.9;white-space:pre-wrap;font-family:monospace;color:#111;">'
        + "".join(spans)
        + "</div>"
        + legend_html(before, after)
    )


def shift_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per token: position, token, probability under each checkpoint, shift (nats), likeliest tokens."""
    return pd.DataFrame(
        [
            {
                "position": i,
                "token": shown_token(r["token"]),
                "before": r["before"],
                "after": r["after"],
                "shift": r["shift"],
                "likeliest before": shown_token(r["top_before"]),
                "likeliest after": shown_token(r["top_after"]),
            }
            for i, r in enumerate(rows)
        ]
    )


def shift_summary(rows: Sequence[dict[str, Any]], before: str, after: str) -> str:
    """One line: mean log-probability under each, and the tokens that rose and fell most."""
    if not rows:
        return "No tokens."
    n = len(rows)
    mean_before = sum(r["logprob_before"] for r in rows) / n
    mean_after = sum(r["logprob_after"] for r in rows) / n
    up = max(rows, key=lambda r: r["shift"])
    down = min(rows, key=lambda r: r["shift"])
    return (
        f"{n} tokens · mean log-prob {mean_before:.2f} under {before}, {mean_after:.2f} under {after} "
        f"(perplexity {math.exp(-mean_before):.2f} → {math.exp(-mean_after):.2f}) · rose most "
        f"{shown_token(up['token'])} ({_times(up['shift'])}) · fell most {shown_token(down['token'])} "
        f"({_times(down['shift'])})"
    )


def moved_bars(frame: pd.DataFrame, before: str, after: str, *, title: str = "") -> go.Figure:
    """Horizontal bars of the mean shift per token (`studio.tokenshift.moved_most`'s frame), largest on top: blue
    for tokens more likely under `after`, orange for less likely; the hover gives the count and both means."""
    shown = [_esc(shown_token(t)) for t in frame["token"]]
    shifts = [float(s) for s in frame["mean_shift"]]
    hover = [
        f"{name}: {_esc(_times(s))} under {_esc(after)} on average ({s:+.2f} nats) over {c} times<br>"
        f"mean probability {b:.1%} under {_esc(before)}, {a:.1%} under {_esc(after)}"
        for name, s, c, b, a in zip(shown, shifts, frame["count"], frame["before"], frame["after"], strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=shifts,
            y=shown,
            orientation="h",
            marker_color=[RAISED if s > 0 else LOWERED for s in shifts],
            text=[f"×{math.exp(s):.2g} ({c})" for s, c in zip(shifts, frame["count"], strict=True)],
            textposition="outside",
            hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    title = title or f"Tokens that moved most from {before} to {after}"
    return _layout(
        fig, title, xaxis_title=f"mean log-probability shift (nats; > 0: likelier under {after})", showlegend=False
    )
