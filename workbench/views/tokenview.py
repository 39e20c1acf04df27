"""The token view, shared by the Lab page and the Chat tab: a reply's text with each token coloured by the model's
probability for it (or the entropy of the distribution it was drawn from), and on hover the top alternatives at
that position with what the current temperature / top-p / top-k would cut.

    rows = tokenprobs.token_probabilities(engine, messages, reply, "base", temperature=0.7, top_p=0.9, top_k=50)
    html = token_html(rows, colour_by="probability")   # for st.html or gr.HTML
    frame = token_table(rows)                          # one row per token, for a table

Every piece of text (tokens come from the model) is HTML-escaped; the hover text is a `title` attribute, so it
needs no script and shows in any browser. Torch-free.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError

COLOUR_BY = ("probability", "entropy")
ENTROPY_FULL = 4.0  # nats at which the entropy colour saturates: past it the model is spread over ~50+ tokens


def shown_token(token: str) -> str:
    """A token as it reads in a list: quotes keep leading spaces visible, and newlines show as escapes."""
    return repr(token)


def _alternative(alt: dict[str, Any]) -> str:
    cut = f"  (cut by {alt['cut']})" if alt["cut"] else ""
    return f"{shown_token(alt['token'])}  {alt['probability']:.1%}{cut}"


def hover_text(row: dict[str, Any]) -> str:
    """The hover text of one token: its probability, entropy and rank, then the alternatives."""
    cut = f", cut by {row['cut']} under these settings" if row.get("cut") else ""
    head = (
        f"{shown_token(row['token'])}: p {row['probability']:.1%} (model) · {row['scaled']:.1%} after temperature · "
        f"entropy {row['entropy']:.2f} nats · rank {row['rank'] + 1}{cut}"
    )
    return "\n".join([head, "top alternatives:", *(f"  {_alternative(a)}" for a in row["alternatives"])])


def _colour(row: dict[str, Any], colour_by: str) -> str:
    """Red for an unlikely token (or a spread-out distribution), through yellow, to green for a sure one."""
    sure = row["probability"] if colour_by == "probability" else 1 - min(row["entropy"] / ENTROPY_FULL, 1.0)
    hue = 120 * max(0.0, min(1.0, sure))  # 0 = red, 60 = yellow, 120 = green
    return f"hsl({hue:.0f}, 75%, 82%)"


def token_html(rows: Sequence[dict[str, Any]], colour_by: str = "probability") -> str:
    """The reply as coloured spans with hover text (see the module docstring)."""
    if colour_by not in COLOUR_BY:
        raise WorkbenchError(f"Colour the tokens by {' or '.join(COLOUR_BY)}, not {colour_by!r}.")
    spans = []
    for row in rows:
        text = html.escape(row["token"]).replace("\n", "↵<br>")
        marker = "text-decoration: line-through;" if row.get("cut") else ""
        spans.append(
            f'<span class="wb-token" style="background:{_colour(row, colour_by)};{marker}" '
            f'title="{html.escape(hover_text(row), quote=True)}">{text}</span>'
        )
    legend = "low probability → high probability" if colour_by == "probability" else "high entropy → low entropy (sure)"
    return (
        '<div class="wb-tokens" style="line-height:1.9;white-space:pre-wrap;font-family:monospace;'
        'color:#111;">' + "".join(spans) + "</div>"
        '<div style="font-size:0.8em;margin-top:4px;">'
        '<span style="background:hsl(0,75%,82%);padding:0 6px;">&nbsp;</span>'
        '<span style="background:hsl(60,75%,82%);padding:0 6px;">&nbsp;</span>'
        '<span style="background:hsl(120,75%,82%);padding:0 6px;">&nbsp;</span> '
        f"{legend} · hover a token for its alternatives · struck through: these settings would cut it</div>"
    )


def token_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per token: position, token, probability, entropy, rank (1 = most likely), cut, alternatives."""
    return pd.DataFrame(
        [
            {
                "position": i,
                "token": shown_token(r["token"]),
                "probability": r["probability"],
                "entropy": r["entropy"],
                "rank": r["rank"] + 1,
                "cut": r["cut"] or "",
                "alternatives": " · ".join(_alternative(a) for a in r["alternatives"]),
            }
            for i, r in enumerate(rows)
        ]
    )


def summary(rows: Sequence[dict[str, Any]]) -> str:
    """One line: tokens, mean log-probability, the least likely token, tokens these settings would cut."""
    if not rows:
        return "No tokens."
    mean = sum(r["logprob"] for r in rows) / len(rows)
    worst = min(rows, key=lambda r: r["probability"])
    cut = sum(1 for r in rows if r["cut"])
    return (
        f"{len(rows)} tokens · mean log-prob {mean:.2f} (perplexity {math.exp(-mean):.2f}) · least likely "
        f"{shown_token(worst['token'])} at {worst['probability']:.1%} · {cut} would be cut by these settings"
    )
