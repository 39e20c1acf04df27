"""Lab page: how generation settings change the outputs for one prompt on one checkpoint.

A small temperature x top-p sweep (the same seeds in every cell) with the outputs and their diversity
(distinct-n, self-BLEU) per setting, and the model's next-token probabilities for the prompt with what top-p
keeps. Widgets and wiring only: the work is workbench/studio/lab.py through the ChatEngine.
"""

from __future__ import annotations

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.generation.settings import conversation
from workbench.studio import compare, lab
from workbench.ui import plots

TEMPERATURES = [0.0, 0.3, 0.7, 1.0, 1.3, 1.6]
TOP_PS = [0.3, 0.5, 0.8, 0.9, 0.95, 1.0]


def _sweep(checkpoint: str, messages) -> None:
    st.header("Sweep")
    left, middle = st.columns(2)
    temps = left.multiselect("Temperatures", TEMPERATURES, default=[0.3, 1.0], key="lab-temps")
    top_ps = middle.multiselect("Top-p values", TOP_PS, default=[0.5, 1.0], key="lab-top-ps")
    left, middle = st.columns(2)
    samples = left.number_input("Samples per setting", 1, 10, 3, key="lab-samples")
    new_tokens = middle.number_input("Max new tokens", 1, 512, 32, key="lab-max-new-tokens")
    st.caption(f"{len(temps) * len(top_ps) * samples} generations; top-k is off so top-p alone truncates.")
    if st.button("Run the sweep", type="primary", key="lab-go"):
        bar = st.progress(0.0, text="Generating…")
        try:
            outputs = lab.sweep(
                common.engine(),
                messages,
                checkpoint,
                temps,
                top_ps,
                samples=int(samples),
                max_new_tokens=int(new_tokens),
                progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total}"),
            )
            st.session_state["lab-result"] = (checkpoint, messages, outputs, lab.diversity(outputs))
        except WorkbenchError as exc:
            common.show_error(exc)
        bar.empty()
    held = st.session_state.get("lab-result")
    if held is None or held[:2] != (checkpoint, messages):
        return
    outputs, table = held[2:]
    left, right = st.columns(2)
    left.plotly_chart(plots.sweep_heatmap(table, "distinct_2", title="distinct-2 (higher = more varied)"), key="lab-d2")
    if table["self_bleu"].notna().any():
        right.plotly_chart(
            plots.sweep_heatmap(table, "self_bleu", title="self-BLEU (lower = more varied)"), key="lab-sb"
        )
    st.dataframe(table.round(3), hide_index=True, key="lab-diversity")
    for (temperature, top_p), cell in outputs.groupby(["temperature", "top_p"]):
        with st.expander(f"temperature {temperature:g} · top-p {top_p:g}"):
            for row in cell.itertuples():
                st.caption(f"seed {row.seed} · {row.new_tokens} tokens · stopped: {row.finish_reason}")
                st.text(row.output or "(empty)")


def _next_tokens(checkpoint: str, messages) -> None:
    st.header("Next-token probabilities")
    left, middle, right = st.columns(3)
    temperature = left.slider("Temperature", 0.0, 2.0, 1.0, 0.05, key="lab-nt-temperature")
    top_p = middle.slider("Top-p", 0.05, 1.0, 0.9, 0.05, key="lab-nt-top-p")
    k = right.number_input("Tokens to show", 1, 50, 10, key="lab-nt-k")
    if st.button("Show the first token's distribution", key="lab-nt-go"):
        try:
            frame = lab.next_tokens(
                common.engine(), messages, checkpoint, k=int(k), temperature=temperature, top_p=top_p
            )
            st.session_state["lab-next"] = (checkpoint, messages, top_p, frame)
        except WorkbenchError as exc:
            common.show_error(exc)
    held = st.session_state.get("lab-next")
    if held is not None and held[:3] == (checkpoint, messages, top_p):
        frame = held[3]
        st.plotly_chart(plots.next_token_bars(frame), key="lab-nt-chart")
        st.caption(f"{int(frame['kept_by_top_p'].sum())} of these {len(frame)} tokens survive top-p {top_p:g}.")
        st.dataframe(frame.round(4), hide_index=True, key="lab-nt-table")


def main() -> None:
    st.title("Generation lab")
    st.caption("One prompt, one checkpoint: see what temperature and top-p do.")
    try:
        choices = compare.checkpoint_choices(common.settings())
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    checkpoint = st.selectbox("Checkpoint", choices, key="lab-checkpoint")
    prompt = st.text_area("Prompt", "Write one sentence about the sea.", key="lab-prompt", height=80)
    if not prompt.strip():
        common.show_error("The prompt is empty: type one.")
        return
    messages = conversation(None, prompt)
    _sweep(checkpoint, messages)
    _next_tokens(checkpoint, messages)


main()
