"""Plotly figures from pandas DataFrames, shared by the Streamlit dashboard and the Gradio app.

Each function takes a DataFrame in a documented shape (what `workbench.store`, `workbench.ratings.scoring` and
`workbench.evaluation.views` return) and gives back a `plotly.graph_objects.Figure`; nothing here reads a database or
loads a model, and torch is never imported.

    fig = metric_bars(frame, title="BLEU · self_instruct_user", base="SmolLM2-135M-Instruct")
    fig = loss_curves(store.training_logs("my-run"))
    fig = leaderboard_chart(scoring.leaderboard(battles))

Text that came from people or from folder names (model names, signatures, tokens) is HTML-escaped before it
goes into hover labels and axis ticks, because plotly renders a subset of HTML there.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

HEIGHT = 380
MARGIN = {"l": 60, "r": 20, "t": 50, "b": 60}  # the least; automargin grows them to fit the labels
TICK_WIDTH = 24  # characters per line of a category tick label
HEATMAP_TICK_WIDTH = 12  # a heatmap's column labels: with many models a column is narrower than a name
BAR = "#4C78A8"
BASE_COLOUR = "#9D9DA1"
LINE_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D")


def _esc(value: Any) -> str:
    """Text safe for plotly's hover and tick labels (which render a subset of HTML)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=False)


def _wrapped(label: str, width: int = TICK_WIDTH) -> str:
    """A long (escaped) tick label broken onto lines of about `width` characters at its spaces, and inside a long
    name after a "/", "-" or "_" (checkpoint names have no spaces), so that plotly neither clips it, tilts it into
    the title, nor overlaps it with its neighbours."""
    pieces: list[tuple[str, str]] = []  # (text, what joins it to the previous piece on one line)
    for word in label.split(" "):
        parts = re.findall(r"[^/_-]*[/_-]|[^/_-]+", word) if len(word) > width else [word]
        pieces += [(part, " " if i == 0 else "") for i, part in enumerate(parts)]
    lines: list[str] = []
    for part, joint in pieces:
        if lines and len(lines[-1]) + len(joint) + len(part) <= width:
            lines[-1] += joint + part
        else:
            lines.append(part)
    return "<br>".join(lines)


def _category_ticks(fig: go.Figure, axis: str, labels: Sequence[str], width: int = TICK_WIDTH) -> None:
    """Show the (escaped) category labels of an axis wrapped; the data keep the full names."""
    ticks = [_wrapped(x, width) for x in labels]
    getattr(fig, f"update_{axis}axes")(tickmode="array", tickvals=list(labels), ticktext=ticks)


def _layout(fig: go.Figure, title: str, **extra: Any) -> go.Figure:
    # automargin: the margins grow to fit the tick labels and axis titles (fixed ones clipped long model names)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    fig.update_layout(
        title=_esc(title) if title else None,
        height=HEIGHT,
        margin=MARGIN,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.22},
        hoverlabel={"align": "left"},
        **extra,
    )
    return fig


def _number(value: Any) -> float | None:
    """A plain float for plotly (None for missing), so figure data compares equal to the frame."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs the columns {', '.join(columns)}; missing {', '.join(missing)}.")


def _step_axis(steps: pd.Series, title: str) -> dict[str, Any]:
    """An x axis of whole training steps: a tick at each step when there are few, never fractional ticks."""
    values = sorted({int(s) for s in steps.dropna()})
    if 0 < len(values) <= 12:
        return {"title": title, "tickmode": "array", "tickvals": values}
    return {"title": title, "tickformat": ",d"}


def _signatures(frame: pd.DataFrame) -> list[str]:
    if "signature" not in frame.columns:
        return [""] * len(frame)
    return [_esc(s) for s in frame["signature"]]


# --- automatic metrics ----------------------------------------------------------------------------------------


def metric_bars(frame: pd.DataFrame, *, title: str = "", base: str | None = None, metric: str = "value") -> go.Figure:
    """One bar per checkpoint, with the base model's value as a dashed reference line.

    Args:
        frame: Columns `checkpoint`, `value` and optionally `signature` (sacrebleu's, shown on hover), one row
            per checkpoint in the order to draw.
        title: Figure title.
        base: Name of the base model's row in `frame`; its value becomes the reference line (its bar is grey).
        metric: Axis and hover name of the value (e.g. "BLEU").
    """
    _require(frame, ["checkpoint", "value"], "A metric bar chart")
    names = [str(c) for c in frame["checkpoint"]]
    values = [_number(v) for v in frame["value"]]
    fig = go.Figure(
        go.Bar(
            x=[_esc(n) for n in names],
            y=values,
            name=metric,
            marker_color=[BASE_COLOUR if n == base else BAR for n in names],
            customdata=_signatures(frame),
            hovertemplate=f"<b>%{{x}}</b><br>{_esc(metric)}: %{{y:.4g}}<br>%{{customdata}}<extra></extra>",
            # the base's value is written on its reference line instead
            text=[f"{v:.4g}" if v is not None and n != base else "" for v, n in zip(values, names, strict=True)],
            textposition="outside",
        )
    )
    if base is not None and base in names:
        base_value = values[names.index(base)]
        if base_value is not None:
            fig.add_hline(
                y=base_value,
                line_dash="dash",
                line_color="#444",
                annotation_text=f"base {base_value:.4g}",
                annotation_position="top left",
            )
    _category_ticks(fig, "x", fig.data[0].x)
    return _layout(fig, title, yaxis_title=_esc(metric), xaxis_title="checkpoint", showlegend=False)


def metric_over_steps(frame: pd.DataFrame, *, title: str = "", metric: str = "value") -> go.Figure:
    """One line per suite of a metric over the training steps of a run.

    Args:
        frame: Columns `suite`, `step`, `value` and optionally `checkpoint` and `signature`; step 0 may hold the
            base model's value (the model before training).
        title: Figure title.
        metric: Axis and hover name of the value.
    """
    _require(frame, ["suite", "step", "value"], "A chart over training steps")
    fig = go.Figure()
    for i, (suite, rows) in enumerate(frame.sort_values(["suite", "step"]).groupby("suite", sort=True)):
        checkpoints = [_esc(c) for c in rows["checkpoint"]] if "checkpoint" in rows else [""] * len(rows)
        fig.add_trace(
            go.Scatter(
                x=[int(s) for s in rows["step"]],
                y=[_number(v) for v in rows["value"]],
                name=_esc(suite),
                mode="lines+markers",
                line_color=LINE_COLOURS[i % len(LINE_COLOURS)],
                customdata=list(zip(checkpoints, _signatures(rows), strict=True)),
                hovertemplate=(
                    f"<b>{_esc(suite)}</b><br>step %{{x}} (%{{customdata[0]}})<br>{_esc(metric)}: %{{y:.4g}}"
                    "<br>%{customdata[1]}<extra></extra>"
                ),
            )
        )
    return _layout(fig, title, xaxis=_step_axis(frame["step"], "training step"), yaxis_title=_esc(metric))


def empty_chart(message: str, *, title: str = "") -> go.Figure:
    """A chart with nothing to draw yet: the sentence in the middle, no axes (rather than plotly's -1 to 6)."""
    fig = go.Figure()
    fig.add_annotation(text=_esc(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    hidden = {"visible": False}
    return _layout(fig, title, xaxis=hidden, yaxis=hidden)


def loss_curves(frame: pd.DataFrame, *, title: str = "Loss", empty: str = "No loss logged yet.") -> go.Figure:
    """Training loss (line) and validation loss (line with markers) over steps.

    Args:
        frame: Columns `step`, `train_loss`, `val_loss` (missing values allowed), e.g.
            `Store.training_logs(run)` or `workbench.training.losses.loss_log(store, settings, run)`.
        title: Figure title.
        empty: The sentence shown instead of axes when there is no loss to draw.
    """
    _require(frame, ["step", "train_loss", "val_loss"], "A loss chart")
    if frame[["train_loss", "val_loss"]].dropna(how="all").empty:
        return empty_chart(empty, title=title)
    fig = go.Figure()
    for column, name, mode in (("train_loss", "train loss", "lines"), ("val_loss", "validation loss", "lines+markers")):
        points = frame[["step", column]].dropna().sort_values("step")
        fig.add_trace(
            go.Scatter(
                x=[int(s) for s in points["step"]],
                y=[float(v) for v in points[column]],
                name=name,
                mode=mode,
                hovertemplate=f"{name}<br>step %{{x}}: %{{y:.4f}}<extra></extra>",
            )
        )
    return _layout(fig, title, xaxis=_step_axis(frame["step"], "step"), yaxis_title="loss")


def reward_curves(frame: pd.DataFrame, *, title: str = "Rewards") -> go.Figure:
    """A DPO run's reward margin (chosen minus rejected, left) and reward accuracy (share of pairs whose chosen
    reply gets the higher reward, right), on training batches (lines) and validation pairs (markers).

    Args:
        frame: Columns `step`, `reward_margin`, `reward_accuracy`, `val_reward_margin`, `val_reward_accuracy`,
            e.g. `workbench.training.losses.reward_log(settings, run)`.
        title: Figure title.
    """
    from plotly.subplots import make_subplots

    _require(
        frame,
        ["step", "reward_margin", "reward_accuracy", "val_reward_margin", "val_reward_accuracy"],
        "A reward chart",
    )
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reward margin", "reward accuracy"))
    for col, metric in ((1, "reward_margin"), (2, "reward_accuracy")):
        for column, name, mode in ((metric, "train", "lines"), (f"val_{metric}", "validation", "lines+markers")):
            points = frame[["step", column]].dropna().sort_values("step")
            label = f"{name} {metric.replace('_', ' ')}"
            fig.add_trace(
                go.Scatter(
                    x=[int(s) for s in points["step"]],
                    y=[float(v) for v in points[column]],
                    name=label,
                    mode=mode,
                    hovertemplate=f"{label}<br>step %{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(range=[-0.05, 1.05], row=1, col=2)
    return _layout(fig, title, xaxis=_step_axis(frame["step"], "step"), xaxis2=_step_axis(frame["step"], "step"))


# --- human ratings ------------------------------------------------------------------------------------------


def _heatmap(matrix: pd.DataFrame, text: list[list[str]], hover: str, colour: str, zrange: tuple | None) -> go.Heatmap:
    z = [[_number(v) for v in row] for row in matrix.to_numpy(dtype=float)]
    labels_y = [_esc(m) for m in matrix.index]
    labels_x = [_esc(m) for m in matrix.columns]
    bounds = {"zmin": zrange[0], "zmax": zrange[1]} if zrange else {}
    return go.Heatmap(
        z=z,
        x=labels_x,
        y=labels_y,
        text=text,
        texttemplate="%{text}",
        colorscale=colour,
        hovertemplate=hover,
        **bounds,
    )


def win_rate_heatmap(matrix: pd.DataFrame, counts: pd.DataFrame | None = None, *, title: str = "") -> go.Figure:
    """Heatmap of how often the row model beat the column model (`scoring.win_rate_matrix`), with the number
    of battles behind each cell on hover when `counts` (`scoring.battle_counts`) is given."""
    text = [["" if pd.isna(v) else f"{v:.0%}" for v in row] for row in matrix.to_numpy(dtype=float)]
    hover = "<b>%{y}</b> beat <b>%{x}</b><br>in %{z:.0%} of their battles%{customdata}<extra></extra>"
    fig = go.Figure(_heatmap(matrix, text, hover, "RdBu", (0.0, 1.0)))
    if counts is not None:
        n = counts.reindex(index=matrix.index, columns=matrix.columns).fillna(0).to_numpy()
        fig.data[0].customdata = [[f"<br>({int(c)} battles)" for c in row] for row in n]
    else:
        fig.data[0].customdata = [[""] * len(matrix.columns) for _ in matrix.index]
    fig.update_yaxes(autorange="reversed", title="model")
    fig.update_xaxes(title="opponent", side="top", tickangle=0)
    _category_ticks(fig, "x", fig.data[0].x, HEATMAP_TICK_WIDTH)
    _category_ticks(fig, "y", fig.data[0].y)
    return _layout(fig, title)


def count_heatmap(counts: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Heatmap of how many battles each pair of models had (`scoring.battle_counts`)."""
    text = [[str(int(v)) for v in row] for row in counts.to_numpy()]
    fig = go.Figure(_heatmap(counts, text, "<b>%{y}</b> vs <b>%{x}</b>: %{z} battles<extra></extra>", "Blues", None))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top", tickangle=0)
    _category_ticks(fig, "x", fig.data[0].x, HEATMAP_TICK_WIDTH)
    _category_ticks(fig, "y", fig.data[0].y)
    return _layout(fig, title)


def _interval_chart(
    frame: pd.DataFrame, label: str, value: str, *, title: str, axis: str, hover_extra: str, custom: list
) -> go.Figure:
    values = [float(v) for v in frame[value]]
    upper = [float(u) - v for u, v in zip(frame["upper"], values, strict=True)]
    lower = [v - float(lo) for lo, v in zip(frame["lower"], values, strict=True)]
    fig = go.Figure(
        go.Scatter(
            x=[_esc(m) for m in frame[label]],
            y=values,
            mode="markers",
            marker={"size": 11, "color": BAR},
            error_y={"type": "data", "symmetric": False, "array": upper, "arrayminus": lower, "thickness": 2},
            customdata=custom,
            hovertemplate=f"<b>%{{x}}</b><br>{axis}: %{{y:.1f}}{hover_extra}<extra></extra>",
        )
    )
    _category_ticks(fig, "x", fig.data[0].x)
    return _layout(fig, title, yaxis_title=axis, xaxis_title=label, showlegend=False)


def leaderboard_chart(board: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Bradley-Terry ratings with their 95% bootstrap intervals as error bars, best first
    (`scoring.leaderboard`: model, rating, lower, upper, rank, battles)."""
    _require(board, ["model", "rating", "lower", "upper", "rank", "battles"], "A leaderboard chart")
    board = board.sort_values("rating", ascending=False)
    custom = [
        [int(r), float(lo), float(up), int(n)]
        for r, lo, up, n in board[["rank", "lower", "upper", "battles"]].to_numpy()
    ]
    extra = " (%{customdata[1]:.1f} to %{customdata[2]:.1f})<br>rank %{customdata[0]} · %{customdata[3]} battles"
    return _interval_chart(
        board, "model", "rating", title=title, axis="Bradley-Terry rating", hover_extra=extra, custom=custom
    )


def likert_chart(summary: pd.DataFrame, *, title: str = "") -> go.Figure:
    """Mean Likert score per model with its 95% interval (`scoring.likert_summary`: model, mean, lower, upper, n),
    on the 1-5 scale."""
    _require(summary, ["model", "mean", "lower", "upper", "n"], "A Likert chart")
    custom = [[float(lo), float(up), int(n)] for lo, up, n in summary[["lower", "upper", "n"]].to_numpy()]
    extra = " (%{customdata[0]:.2f} to %{customdata[1]:.2f})<br>%{customdata[2]} scores"
    fig = _interval_chart(
        summary, "model", "mean", title=title, axis="mean score (1-5)", hover_extra=extra, custom=custom
    )
    fig.data[0].hovertemplate = fig.data[0].hovertemplate.replace("%{y:.1f}", "%{y:.2f}")
    fig.update_yaxes(range=[0.8, 5.2], dtick=1)
    return fig


# --- generation lab -----------------------------------------------------------------------------------------


def next_token_bars(frame: pd.DataFrame, *, title: str = "Next-token probabilities") -> go.Figure:
    """Horizontal bars of the most likely next tokens (columns `token`, `probability`), most likely on top;
    with a boolean `kept_by_top_p` column, the tokens top-p sampling would drop are grey."""
    _require(frame, ["token", "probability"], "A next-token chart")
    shown = [_esc(repr(t)) for t in frame["token"]]
    kept = list(frame["kept_by_top_p"]) if "kept_by_top_p" in frame.columns else [True] * len(frame)
    fig = go.Figure(
        go.Bar(
            x=[float(p) for p in frame["probability"]],
            y=shown,
            orientation="h",
            marker_color=[BAR if k else BASE_COLOUR for k in kept],
            text=[f"{p:.1%}" for p in frame["probability"]],
            textposition="outside",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, title, xaxis_title="probability", xaxis_tickformat=".0%", showlegend=False)


def sweep_heatmap(
    frame: pd.DataFrame,
    value: str,
    *,
    title: str = "",
    y: str = "temperature",
    x: str | None = "top_p",
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """Heatmap of one measure (e.g. distinct-2) over a sweep's grid: `y` down, `x` across (None: a one-axis sweep,
    one column). Columns: `y`, `x` when given, and `value`; `labels` names the axes (default: their columns)."""
    labels = labels or {}
    _require(frame, [y, value] + ([x] if x else []), "A sweep heatmap")
    data = frame if x else frame.assign(_all=value)
    column = x or "_all"
    grid = data.pivot_table(index=y, columns=column, values=value, aggfunc="mean").sort_index()
    grid.index = [f"{t:g}" for t in grid.index]
    grid.columns = [f"{p:g}" if x else "" for p in grid.columns]
    text = [["" if pd.isna(v) else f"{v:.3g}" for v in row] for row in grid.to_numpy(dtype=float)]
    name_y, name_x = _esc(labels.get(y, y)), _esc(labels.get(x, x)) if x else ""
    where = f"{name_y} %{{y}}" + (f", {name_x} %{{x}}" if x else "")
    fig = go.Figure(_heatmap(grid, text, f"{where}<br>{_esc(value)}: %{{z:.3g}}<extra></extra>", "Viridis", None))
    fig.update_yaxes(title=labels.get(y, y), type="category")
    fig.update_xaxes(title=labels.get(x, x) if x else "", type="category")
    return _layout(fig, title)


def preference_chart(table: pd.DataFrame, axis: str, *, title: str = "") -> go.Figure:
    """Raters' preference against one generation setting: each settings' Bradley-Terry rating with its 95%
    interval at its value of `axis` (`workbench.studio.preference.preference_by_setting`: settings, value,
    rating, lower, upper, battles)."""
    _require(table, ["settings", "value", "rating", "lower", "upper", "battles"], "A preference chart")
    numeric = table["value"].notna().all()
    frame = table.assign(x=table["value"] if numeric else table["settings"])
    custom = [
        [_esc(s), float(lo), float(up), int(n)]
        for s, lo, up, n in frame[["settings", "lower", "upper", "battles"]].to_numpy()
    ]
    fig = go.Figure(
        go.Scatter(
            x=list(frame["x"]) if numeric else [_esc(v) for v in frame["x"]],
            y=[float(v) for v in frame["rating"]],
            mode="markers+lines" if numeric and frame["x"].is_unique else "markers",
            marker={"size": 11, "color": BAR},
            line={"color": BASE_COLOUR, "dash": "dot"},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": list(frame["upper"] - frame["rating"]),
                "arrayminus": list(frame["rating"] - frame["lower"]),
                "thickness": 2,
            },
            customdata=custom,
            hovertemplate="<b>%{customdata[0]}</b><br>rating %{y:.1f} (%{customdata[1]:.1f} to %{customdata[2]:.1f})"
            "<br>%{customdata[3]} battles<extra></extra>",
        )
    )
    return _layout(
        fig, title, yaxis_title="Bradley-Terry rating (raters' preference)", xaxis_title=axis, showlegend=False
    )
