"""Unit tests of workbench.views.plots and workbench.evaluation.views: each figure's data is the DataFrame it was
drawn from.

Run: .venv/bin/python -m pytest -q tests/ui/test_plots.py
Synthetic frames only (the maths of ratings is tested in tests/ratings/test_scoring.py); also checks that untrusted
names are HTML-escaped in hover labels, that the Fine-tune tab draws its loss chart with plots.loss_curves, and
that plots stays torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation import views as mv
from workbench.ratings import scoring
from workbench.store import Store
from workbench.training.losses import loss_frame
from workbench.views import plots

SIG = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


def _hline(fig):
    return [s for s in fig.layout.shapes if s.type == "line"]


def test_metric_bars_match_the_frame_and_draw_the_base_as_a_reference_line():
    frame = pd.DataFrame(
        {"checkpoint": ["Smol", "run/checkpoint-2", "run/checkpoint-4"], "value": [10.5, 12.25, 14.0], "signature": SIG}
    )
    fig = plots.metric_bars(frame, title="BLEU · suite", base="Smol", metric="BLEU")
    bar = fig.data[0]
    assert list(bar.x) == list(frame["checkpoint"]) and list(bar.y) == list(frame["value"])
    assert list(bar.customdata) == [SIG] * 3 and "%{customdata}" in bar.hovertemplate and "BLEU" in bar.hovertemplate
    assert bar.marker.color[0] != bar.marker.color[1]  # the base bar is set apart
    (line,) = _hline(fig)
    assert line.y0 == line.y1 == 10.5 and line.line.dash == "dash"
    # no base in the frame: no reference line
    assert _hline(plots.metric_bars(frame.iloc[1:], base="Smol")) == []


def test_metric_over_steps_has_one_line_per_suite_sorted_by_step():
    frame = pd.DataFrame(
        {
            "suite": ["b", "a", "a", "b", "a"],
            "step": [4, 4, 0, 0, 2],
            "value": [3.0, 2.0, 9.0, 8.0, 5.0],
            "checkpoint": ["r/checkpoint-4", "r/checkpoint-4", "Smol", "Smol", "r/checkpoint-2"],
            "signature": ["s"] * 5,
        }
    )
    fig = plots.metric_over_steps(frame, metric="perplexity")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == [0, 2, 4] and list(fig.data[0].y) == [9.0, 5.0, 2.0]
    assert list(fig.data[1].x) == [0, 4] and list(fig.data[1].y) == [8.0, 3.0]
    assert fig.data[0].customdata[1][0] == "r/checkpoint-2"


def test_loss_curves_from_the_store_and_from_a_run_log_agree(tmp_path):
    curves = {"train": [(1, 2.5), (2, 2.0), (3, 1.5), (4, 1.25)], "val": [(2, 2.2), (4, 1.9)]}
    frame = loss_frame(curves)
    assert list(frame["step"]) == [1, 2, 3, 4] and frame["val_loss"].isna().sum() == 2
    fig = plots.loss_curves(frame, title="Loss · run")
    train, val = fig.data
    assert (list(train.x), list(train.y)) == ([1, 2, 3, 4], [2.5, 2.0, 1.5, 1.25])
    assert (list(val.x), list(val.y)) == ([2, 4], [2.2, 1.9]) and val.mode == "lines+markers"
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        for step, loss in curves["train"]:
            store.add_training_log("run", step, loss=loss)
        for step, loss in curves["val"]:
            store.add_training_log("run", step, eval_loss=loss)
        from_store = plots.loss_curves(store.training_logs("run"))
    assert [list(t.y) for t in from_store.data] == [list(t.y) for t in fig.data]
    assert loss_frame({"train": [], "val": []}).empty


def test_finetune_tab_draws_its_loss_chart_with_plots():
    pytest.importorskip("gradio")
    from workbench.ui import finetune

    fig = finetune._figure({"train": [(1, 2.0), (2, 1.0)], "val": [(2, 1.5)]}, "my-run")
    assert [list(t.y) for t in fig.data] == [[2.0, 1.0], [1.5]]
    assert "my-run" in fig.layout.title.text
    empty = finetune._figure({"train": [], "val": []}, "")  # before the first run: a sentence, not axes
    assert not empty.data and empty.layout.xaxis.visible is False
    assert "No loss yet" in empty.layout.annotations[0].text


def _battles(rows):
    return pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]).assign(tstamp=range(len(rows)))


def test_win_rate_heatmap_and_counts_match_the_matrices():
    battles = _battles(
        [("A", "B", "model_a"), ("A", "B", "model_a"), ("B", "A", "model_a"), ("A", "C", "tie"), ("C", "B", "model_b")]
    )
    matrix, counts = scoring.win_rate_matrix(battles), scoring.battle_counts(battles)
    fig = plots.win_rate_heatmap(matrix, counts)
    heat = fig.data[0]
    assert list(heat.y) == list(matrix.index) and list(heat.x) == list(matrix.columns)
    z = np.array(heat.z, dtype=float)
    assert np.allclose(z, matrix.to_numpy(), equal_nan=True)
    i, j = list(matrix.index).index("A"), list(matrix.columns).index("B")
    assert z[i, j] == pytest.approx(2 / 3) and heat.text[i][j] == "67%" and "(3 battles)" in heat.customdata[i][j]
    assert heat.text[i][i] == ""  # a model never meets itself
    count_fig = plots.count_heatmap(counts.loc[matrix.index, matrix.columns])
    assert np.array(count_fig.data[0].z)[i, j] == 3


def test_leaderboard_chart_error_bars_are_the_bootstrap_interval():
    board = pd.DataFrame(
        {
            "model": ["B", "A"],
            "rating": [980.0, 1020.0],
            "lower": [950.0, 1000.0],
            "upper": [1001.0, 1050.0],
            "rank": [1, 1],
            "battles": [10, 10],
        }
    )
    fig = plots.leaderboard_chart(board)
    points = fig.data[0]
    assert list(points.x) == ["A", "B"] and list(points.y) == [1020.0, 980.0]  # best first
    assert list(points.error_y.array) == [30.0, 21.0] and list(points.error_y.arrayminus) == [20.0, 30.0]


def test_likert_chart_means_and_intervals_on_the_1_to_5_scale():
    likert = pd.DataFrame({"model": ["x"] * 4 + ["y"] * 3, "score": [5, 4, 4, 3, 2, 1, 3]})
    summary = scoring.likert_summary(likert, bootstrap=200, seed=1)
    fig = plots.likert_chart(summary)
    points = fig.data[0]
    assert list(points.x) == ["x", "y"] and list(points.y) == pytest.approx([4.0, 2.0])
    assert [y - lo for y, lo in zip(points.y, summary["lower"], strict=True)] == pytest.approx(
        list(points.error_y.arrayminus)
    )
    assert list(fig.layout.yaxis.range) == [0.8, 5.2]


def test_next_token_bars_and_sweep_heatmap():
    frame = pd.DataFrame({"token": [" The", "\n", " A"], "probability": [0.5, 0.3, 0.1]})
    fig = plots.next_token_bars(frame)
    assert list(fig.data[0].x) == [0.5, 0.3, 0.1] and list(fig.data[0].y) == ["' The'", "'\\n'", "' A'"]
    sweep = pd.DataFrame(
        {"temperature": [0.3, 0.3, 1.0, 1.0], "top_p": [0.5, 1.0, 0.5, 1.0], "d2": [0.1, 0.2, 0.3, 0.4]}
    )
    heat = plots.sweep_heatmap(sweep, "d2").data[0]
    assert (
        list(heat.y) == ["0.3", "1"]
        and list(heat.x) == ["0.5", "1"]
        and [list(r) for r in heat.z] == [[0.1, 0.2], [0.3, 0.4]]
    )


def test_names_are_escaped_in_hover_labels():
    evil = "<img src=x onerror=alert(1)>"
    fig = plots.metric_bars(pd.DataFrame({"checkpoint": [evil], "value": [1.0], "signature": ["<b>sig</b>"]}))
    assert fig.data[0].x[0] == "&lt;img src=x onerror=alert(1)&gt;"
    assert fig.data[0].customdata[0] == "&lt;b&gt;sig&lt;/b&gt;"


def _results() -> pd.DataFrame:
    """Eval results as Store.eval_results() returns them: base, two checkpoints of a run, a re-run of one."""
    rows = []
    for i, (ck, base, step, metric, value, t) in enumerate(
        [
            ("Smol", "Smol", None, "bleu", 10.0, 1),
            ("run/checkpoint-4", "Smol", 4, "bleu", 14.0, 2),
            ("run/checkpoint-2", "Smol", 2, "bleu", 12.0, 3),
            ("run/checkpoint-4", "Smol", 4, "bleu", 15.0, 4),  # newer: wins
            ("Smol", "Smol", None, "perplexity", 30.0, 5),
            ("run/checkpoint-2", "Smol", 2, "perplexity", 20.0, 6),
        ]
    ):
        rows.append(
            {
                "id": i + 1,
                "suite": "s",
                "checkpoint": ck,
                "base_model": base,
                "checkpoint_step": step,
                "step": step,
                "metric": metric,
                "value": value,
                "signature": SIG if metric == "bleu" else "window:512",
                "num_examples": 3,
                "num_tokens": 99,
                "settings": None,
                "model_hash": None,
                "dataset_hash": None,
                "metadata": {},
                "created_at": float(t),
            }
        )
    return pd.DataFrame(rows)


def test_views_pick_the_newest_value_per_checkpoint_base_first():
    results = _results()
    assert mv.suite_metrics(results) == [("s", "perplexity"), ("s", "bleu")]
    frame = mv.per_checkpoint(results, "s", "bleu")
    assert list(frame["checkpoint"]) == ["Smol", "run/checkpoint-2", "run/checkpoint-4"]
    assert list(frame["value"]) == [10.0, 12.0, 15.0] and mv.base_of(frame) == "Smol"
    assert mv.runs(results) == ["run"]
    steps = mv.over_steps(results, "run", "bleu")
    assert list(steps["step"]) == [0, 2, 4] and list(steps["value"]) == [10.0, 12.0, 15.0]
    assert list(mv.example_results(results)["id"]) == [4, 3, 2, 1]
    assert mv.over_steps(results, "other", "bleu").empty and mv.points(results.iloc[:0]).empty


def test_plots_stays_light():
    from tests.test_imports import heavy_after

    modules = [
        "workbench.views.plots",
        "workbench.views.markup",
        "workbench.evaluation.views",
        "workbench.ratings.leaderboard",
        "workbench.studio.compare",
        "workbench.studio.lab",
        "workbench.studio.promptsets",
    ]
    assert heavy_after(f"import {', '.join(modules)}") == []


def test_sweep_heatmap_on_any_axes_and_one_axis():
    sweep = pd.DataFrame({"top_k": [5, 5, 50, 50], "repetition_penalty": [1.0, 1.3] * 2, "rep": [0.4, 0.1, 0.5, 0.2]})
    fig = plots.sweep_heatmap(sweep, "rep", y="top_k", x="repetition_penalty", labels={"top_k": "top-k"})
    heat = fig.data[0]
    assert list(heat.y) == ["5", "50"] and list(heat.x) == ["1", "1.3"]
    assert [list(r) for r in heat.z] == [[0.4, 0.1], [0.5, 0.2]] and fig.layout.yaxis.title.text == "top-k"
    one = plots.sweep_heatmap(sweep, "rep", y="top_k", x=None).data[0]
    assert list(one.y) == ["5", "50"] and [list(r) for r in one.z] == [[pytest.approx(0.25)], [pytest.approx(0.35)]]


def test_long_names_are_wrapped_on_the_axes_and_the_margins_grow_to_fit_them():
    long = "SmolLM2-135M-Instruct · temp 0.2 · top-p 0.9 · top-k 50 · max 256 · rep 1.1 · seed 0"
    names = [long, "run/checkpoint-4"]
    matrix = pd.DataFrame([[np.nan, 0.75], [0.25, np.nan]], index=names, columns=names)
    board = pd.DataFrame(
        {"model": names, "rating": [1100.0, 900.0], "lower": [1000.0, 800.0], "upper": [1200.0, 1000.0]}
        | {"rank": [1, 2], "battles": [4, 4]}
    )
    heatmap_columns = (plots.win_rate_heatmap(matrix), "x", plots.HEATMAP_TICK_WIDTH)  # narrow columns
    for fig, axis, width in (
        heatmap_columns,
        (plots.win_rate_heatmap(matrix), "y", plots.TICK_WIDTH),
        (plots.leaderboard_chart(board), "x", plots.TICK_WIDTH),
    ):
        layout = fig.layout[f"{axis}axis"]
        assert layout.automargin is True and list(layout.tickvals) == names  # the data keep the full names
        for name, text in zip(names, layout.ticktext, strict=True):
            lines = text.split("<br>")
            assert all(len(line) <= width for line in lines), lines
            assert "".join(lines).replace(" ", "") == name.replace(" ", "")  # nothing lost, only line breaks
        assert len(layout.ticktext[0].split("<br>")) > 1
    assert plots.win_rate_heatmap(matrix).layout.xaxis.tickangle == 0
    # a name without spaces breaks after its separators, never inside a word
    assert plots._wrapped("dashrun/checkpoint-4", 12) == "dashrun/<br>checkpoint-4"
    assert plots._wrapped("run/checkpoint-4") == "run/checkpoint-4"
