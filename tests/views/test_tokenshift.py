"""The token-shift views: colours diverge around white, the hover says both probabilities in words, every token is
escaped, the summary and table carry the numbers, and the bar chart's colours and order follow the shifts.

Run: .venv/bin/python -m pytest -q tests/views/test_tokenshift.py
"""

from __future__ import annotations

import math

import pandas as pd

from workbench.views import tokenshift


def row(token, before, after, top_before="x", top_after="y"):
    a, b = math.log(before), math.log(after)
    return {
        "token": token,
        "before": before,
        "after": after,
        "logprob_before": a,
        "logprob_after": b,
        "shift": b - a,
        "top_before": top_before,
        "top_after": top_after,
    }


ROWS = [row("<b>", 0.1, 0.8), row(" same", 0.5, 0.5), row("\n", 0.6, 0.06)]


def test_colours_diverge_from_white_and_saturate():
    assert tokenshift.shift_colour(0.0).endswith("97%)")
    assert tokenshift.shift_colour(1.0).startswith("hsl(213") and tokenshift.shift_colour(-1.0).startswith("hsl(28")
    assert tokenshift.shift_colour(5.0) == tokenshift.shift_colour(tokenshift.SHIFT_FULL)


def test_the_html_escapes_tokens_and_says_both_probabilities():
    page = tokenshift.shift_html(ROWS, "base", "my-run")
    assert "&lt;b&gt;" in page and "<b>" not in page.split("wb-shift-legend")[0]
    assert page.count('class="wb-shift"') == 3 and "↵<br>" in page
    hover = tokenshift.shift_hover(ROWS[0], "base", "my-run")
    assert hover.splitlines()[0] == "'<b>': 8.0× more likely under my-run (+2.08 nats)"
    assert "base: 10.0%" in hover and "my-run: 80.0%" in hover and "likeliest here: 'y'" in hover
    assert "unchanged" in tokenshift.shift_hover(ROWS[1], "base", "my-run")
    assert "10× less likely" in tokenshift.shift_hover(ROWS[2], "base", "my-run")
    assert "more likely under my-run" in tokenshift.legend_html("base", "my-run")


def test_summary_and_table():
    line = tokenshift.shift_summary(ROWS, "base", "my-run")
    assert line.startswith("3 tokens") and "rose most '<b>' (8.0× more likely)" in line
    assert "fell most '\\n' (10× less likely)" in line
    table = tokenshift.shift_table(ROWS)
    assert list(table["token"]) == ["'<b>'", "' same'", "'\\n'"] and table["shift"][1] == 0
    assert tokenshift.shift_summary([], "a", "b") == "No tokens."


def test_moved_bars_colour_by_direction():
    frame = pd.DataFrame(
        {
            "token": [" I", " Paris"],
            "count": [3, 2],
            "mean_shift": [-1.5, 0.7],
            "before": [0.4, 0.1],
            "after": [0.1, 0.2],
        }
    )
    bar = tokenshift.moved_bars(frame, "base", "my-run").data[0]
    assert list(bar.y) == ["' I'", "' Paris'"] and list(bar.x) == [-1.5, 0.7]
    assert list(bar.marker.color) == [tokenshift.LOWERED, tokenshift.RAISED]
    assert "over 3 times" in bar.hovertext[0] and "under base" in bar.hovertext[0]
