"""The token view's HTML and table on hand-made rows: colours follow probability or entropy, model text is
escaped, hover text lists the alternatives with what the settings cut.

Run: .venv/bin/python -m pytest -q tests/ui/test_tokenview.py
"""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.views import tokenview


def row(token, probability, entropy, rank=0, cut=None):
    alternatives = [
        {"token_id": 1, "token": token, "probability": probability, "cut": cut},
        {"token_id": 2, "token": " <b>x</b>", "probability": 0.1, "cut": "top-p"},
    ]
    return {
        "token": token,
        "probability": probability,
        "logprob": -1.0,
        "entropy": entropy,
        "rank": rank,
        "scaled": probability,
        "cut": cut,
        "alternatives": alternatives,
    }


ROWS = [row(" sure", 0.95, 0.2), row("<script>", 0.05, 3.9, rank=3, cut="top-k"), row("\n", 0.5, 1.0)]


def test_colours_follow_probability_or_entropy():
    html = tokenview.token_html(ROWS, "probability")
    assert html.count('class="wb-token"') == 3
    assert "hsl(114," in html and "hsl(6," in html and "hsl(60," in html  # 0.95 green, 0.05 red, 0.5 yellow
    by_entropy = tokenview.token_html(ROWS, "entropy")
    assert "hsl(114," in by_entropy and "hsl(3," in by_entropy  # 0.2 nats sure, 3.9 nats spread out
    with pytest.raises(WorkbenchError, match="probability or entropy"):
        tokenview.token_html(ROWS, "colour")


def test_model_text_is_escaped_and_hover_lists_the_cuts():
    html = tokenview.token_html(ROWS)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html
    assert "line-through" in html  # the token these settings would cut
    hover = tokenview.hover_text(ROWS[1])
    assert "rank 4, cut by top-k" in hover and "(cut by top-p)" in hover and "' <b>x</b>'  10.0%" in hover
    assert "↵<br>" in html  # a newline token stays visible


def test_table_and_summary():
    table = tokenview.token_table(ROWS)
    assert list(table["rank"]) == [1, 4, 1] and list(table["cut"]) == ["", "top-k", ""]
    assert table.loc[1, "token"] == "'<script>'"
    line = tokenview.summary(ROWS)
    assert "3 tokens" in line and "least likely '<script>' at 5.0%" in line and "1 would be cut" in line
