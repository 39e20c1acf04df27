"""Metrics page: the evaluation suites' numbers as charts with a table under each.

Per checkpoint (bars, the base model as a dashed reference line), over the training steps of a run (one line
per suite), training and validation loss curves (the admin's only: the owner, or after the admin token), and
the outputs behind a BLEU score, example by example.
Hover shows each value with its sacrebleu signature. Widgets and wiring only: the shaping is
workbench/evaluation/views.py and workbench/training/losses.py, the figures workbench/views/plots.py.
"""

from __future__ import annotations

import streamlit as st

from pages import common
from workbench.evaluation import views as mv
from workbench.training import losses
from workbench.views import plots

TABLE = ["checkpoint", "step", "value", "signature", "num_examples", "num_tokens"]


def _per_checkpoint(results) -> None:
    st.header("Per checkpoint")
    pairs = mv.suite_metrics(results)
    metrics = list(dict.fromkeys(m for _, m in pairs))
    for tab, metric in zip(st.tabs([mv.metric_label(m) for m in metrics]), metrics, strict=True):
        with tab:
            if metric in mv.LOWER_IS_BETTER:
                st.caption("Lower is better.")
            for suite in [s for s, m in pairs if m == metric]:
                frame = mv.per_checkpoint(results, suite, metric)
                label = mv.metric_label(metric)
                fig = plots.metric_bars(frame, title=f"{label} · {suite}", base=mv.base_of(frame), metric=label)
                st.plotly_chart(fig, key=f"bars-{suite}-{metric}")
                common.table(frame[TABLE], hide_index=True, key=f"table-{suite}-{metric}")


def _over_steps(results) -> None:
    st.header("Over training steps")
    runs = mv.runs(results)
    if not runs:
        st.caption("No evaluated checkpoints of a training run yet (`python -m workbench eval --all-checkpoints RUN`).")
        return
    left, right = st.columns(2)
    run = left.selectbox("Run", runs, key="steps-run")
    metrics = sorted(
        {m for _, m in mv.suite_metrics(results)},
        key=lambda m: mv.METRIC_ORDER.index(m) if m in mv.METRIC_ORDER else 99,
    )
    metric = right.selectbox("Metric", metrics, format_func=mv.metric_label, key="steps-metric")
    frame = mv.over_steps(results, run, metric)
    if frame.empty:
        st.caption(f"{run} has no {mv.metric_label(metric)} results.")
        return
    label = mv.metric_label(metric)
    st.plotly_chart(plots.metric_over_steps(frame, title=f"{label} · {run}", metric=label), key="steps-chart")
    common.table(frame, hide_index=True, key="steps-table")


def _losses(store) -> None:
    """The training runs' loss curves: for the owner, or after the admin token (training logs are the admin's)."""
    st.header("Training and validation loss")
    token = common.admin_token_box(st, "loss-token")
    refusal = common.admin_refusal(token)  # the one throttle: a rerun sending the same wrong token is no new guess
    if refusal is not None:
        if token:
            common.show_error(refusal)
        else:
            st.caption(
                "Training logs are shown to the admin only: give the admin token."
                if common.settings().admin_token
                else "Training logs are shown to the admin only: on this server, set WORKBENCH_ADMIN_TOKEN."
            )
        return
    runs = losses.loss_runs(store, common.settings())
    if not runs:
        st.caption("No training runs yet (the Gradio app's Fine-tune tab, or `python -m workbench train`).")
        return
    run = st.selectbox("Training run", runs, key="loss-run")
    frame = losses.loss_log(store, common.settings(), run)
    st.plotly_chart(plots.loss_curves(frame, title=f"Loss · {run}"), key="loss-chart")
    common.table(frame, hide_index=True, key="loss-table")


def _examples(store, results) -> None:
    st.header("Outputs behind a BLEU score")
    choices = mv.example_results(results, "bleu")
    if choices.empty:
        st.caption("No BLEU results yet.")
        return
    label = st.selectbox("Result", list(choices["label"]), key="examples-result")
    row = choices[choices["label"] == label].iloc[0]
    st.caption(f"Corpus BLEU {row['value']:.2f} · {row['signature'] or ''}")
    examples = store.eval_examples(int(row["id"]))
    if examples.empty:
        st.caption("This result has no per-example outputs stored.")
        return
    table = examples.assign(references=examples["references"].map(lambda r: " ||| ".join(r or [])))
    st.caption("Sentence BLEU per example (sacrebleu, effective order); lowest first.")
    common.table(
        table[["example_index", "score", "prompt", "hypothesis", "references"]].sort_values("score"),
        hide_index=True,
        key="examples-table",
    )
    index = st.selectbox("Read one example", list(examples["example_index"]), key="examples-index")
    chosen = examples[examples["example_index"] == index].iloc[0]
    st.caption(f"Sentence BLEU {chosen['score']:.2f}" if chosen["score"] is not None else "No sentence score")
    left, right = st.columns(2)
    with left:
        st.caption("Prompt")
        st.text(chosen["prompt"] or "")
        st.caption("Output")
        st.text(chosen["hypothesis"] or "(empty)")
    with right:
        for i, ref in enumerate(chosen["references"] or [], 1):
            st.caption(f"Reference {i}")
            st.text(ref)


def main() -> None:
    st.title("Metrics")
    store = common.store()
    results = store.eval_results()
    if results.empty:
        st.info(
            "No evaluation results yet. Run for example `python -m workbench eval --suite shakespeare "
            "--suite identity_heldout --checkpoint base`, or evaluate every checkpoint of a run with "
            "`--all-checkpoints RUN`."
        )
    else:
        _per_checkpoint(results)
        _over_steps(results)
    _losses(store)
    if not results.empty:
        _examples(store, results)


main()
