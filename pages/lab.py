"""Lab page: tune generation settings on one screen. A prompt (typed, or a suite example with references), the
setting being tuned (a preset, the sliders, save it as a preset or with the checkpoint), a sweep over any one or
two settings and several checkpoints with a heatmap per measure, which setting raters preferred, each token of a
reply coloured by its probability with the alternatives on hover, what the checkpoint changed against another
(pages/lab_shift.py: a reply's tokens coloured by the shift, and over a suite the tokens that moved most), and the
first token's distribution.

Widgets and wiring only: the work is workbench/studio/sweep.py and lab.py (through the ChatEngine), presets are
workbench/generation/presets.py, the token view is workbench/views/tokenview.py.

A visitor (pages/common.py) has the app's limits: every output of a sweep, a token view (and its re-reading under
new sliders) and the first-token distribution count against their reply limit before the model is asked, with
their sizes and the checkpoints they may choose; saving is an admin action.
"""

from __future__ import annotations

import streamlit as st

from pages import common, lab_shift
from workbench.errors import WorkbenchError
from workbench.generation import presets
from workbench.generation.settings import GenerationSettings, conversation
from workbench.generation.tokenprobs import mean_logprob
from workbench.studio import lab, sweep
from workbench.views import plots, tokenview

AXIS_VALUES = {
    "temperature": [0.0, 0.3, 0.7, 1.0, 1.3, 1.6],
    "top_p": [0.3, 0.5, 0.8, 0.9, 0.95, 1.0],
    "top_k": [0, 1, 5, 20, 50, 100],
    "min_p": [0.0, 0.02, 0.05, 0.1, 0.2, 0.3],
    "repetition_penalty": [1.0, 1.1, 1.2, 1.3, 1.5],
    "adapter_strength": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
}
FIRST_VALUES = {"temperature": [0.3, 1.0], "top_p": [0.5, 1.0], "top_k": [5, 50], "repetition_penalty": [1.0, 1.3]}
FIRST_VALUES |= {"min_p": [0.0, 0.1], "adapter_strength": [0.0, 0.5, 1.0]}
METRIC_LABELS = {
    "distinct_2": "distinct-2 (higher = more varied)",
    "distinct_1": "distinct-1 (higher = more varied)",
    "self_bleu": "self-BLEU (lower = more varied)",
    "repetition": "repetition, rep-3 (lower = fewer loops)",
    "mean_logprob": "mean token log-prob (higher = likelier text)",
    "mean_tokens": "mean length in tokens",
    "bleu": "BLEU against the references",
    "chrf": "chrF against the references",
}
SLIDERS = {"temperature": "lab-temperature", "top_p": "lab-top-p", "top_k": "lab-top-k"}
SLIDERS["repetition_penalty"] = "lab-repetition-penalty"
NO_SECOND = "(none)"


def _apply(gen: GenerationSettings) -> None:
    """Put a setting into the sliders (a callback: it runs before the widgets are drawn again)."""
    for name, key in SLIDERS.items():
        st.session_state[key] = getattr(gen, name)
    st.session_state["lab-base"] = gen


def _on_preset() -> None:
    try:
        _apply(presets.preset(common.settings(), st.session_state["lab-preset"]))
    except WorkbenchError as exc:
        st.session_state["lab-note"] = str(exc)


def _on_checkpoint() -> None:
    """A checkpoint saved with its own setting brings it into the sliders."""
    checkpoint = st.session_state["lab-checkpoint"]
    try:
        saved = presets.checkpoint_default(common.settings(), checkpoint)
    except WorkbenchError as exc:
        st.session_state["lab-note"] = str(exc)
        return
    if saved is not None:
        _apply(saved)
        st.session_state["lab-note"] = f"Loaded the setting saved with {checkpoint}."


def _prompt():
    """(messages, references) from a typed prompt or a suite example; None (after a message) when empty."""
    source = st.radio("Prompt from", ["typed", "an evaluation suite"], horizontal=True, key="lab-source")
    if source == "typed":
        text = st.text_area("Prompt", "Write one sentence about the sea.", key="lab-prompt", height=80)
        if not text.strip():
            common.show_error("The prompt is empty: type one.")
            return None
        if len(text) > common.sizes().message_chars:
            common.show_error(
                f"The prompt is {len(text):,} characters; the limit here is {common.sizes().message_chars:,}."
            )
            return None
        return conversation(None, text), []
    from workbench.evaluation.suites import list_suites

    names = [s.name for s in list_suites() if s.kind == "generation"]
    left, right = st.columns([3, 1])
    suite = left.selectbox("Suite", names, key="lab-suite")
    example = right.number_input("Example", 0, 10_000, 0, key="lab-example")
    try:
        messages, references = sweep.suite_prompt(suite, int(example))
    except WorkbenchError as exc:
        common.show_error(exc)
        return None
    st.text(messages[-1]["content"])
    st.caption(f"{len(references)} reference(s): BLEU and chrF per cell are measured against them.")
    return messages, references


def _setting(checkpoint: str) -> GenerationSettings:
    """The setting being tuned: preset, sliders, and saving it."""
    st.header("The setting")
    st.session_state.setdefault("lab-base", GenerationSettings())
    for name, key in SLIDERS.items():
        st.session_state.setdefault(key, getattr(st.session_state["lab-base"], name))
    names = list(presets.presets(common.settings()))
    default = names.index(presets.DEFAULT_PRESET) if presets.DEFAULT_PRESET in names else None  # = the sliders
    st.selectbox(
        "Preset", names, index=default, placeholder="Start from a preset…", key="lab-preset", on_change=_on_preset
    )
    cols = st.columns(4)
    cols[0].slider("Temperature", 0.0, 2.0, step=0.05, key="lab-temperature")
    cols[1].slider("Top-p", 0.05, 1.0, step=0.01, key="lab-top-p")
    cols[2].number_input("Top-k (0 = off)", 0, 500, key="lab-top-k")
    cols[3].slider("Repetition penalty", 0.5, 2.0, step=0.05, key="lab-repetition-penalty")
    if st.session_state.get("lab-note"):
        st.caption(st.session_state.pop("lab-note"))
    gen = st.session_state["lab-base"].replace(**{name: st.session_state[key] for name, key in SLIDERS.items()})
    _save(checkpoint, gen)
    return gen


def _save(checkpoint: str, gen: GenerationSettings) -> None:
    left, middle, right = st.columns([2, 1, 2])
    name = left.text_input("Preset name", key="lab-preset-name", placeholder="my-demo")
    cfg = common.settings()
    # Saving writes files on the server: an admin action (open on the owner's own dashboard, see access.py).
    token = common.admin_token_box(left, "lab-token")
    if middle.button("Save as preset", key="lab-save-preset"):
        try:
            common.check_admin(token)
            presets.save_preset(cfg, name, gen)
            st.success(f"Saved preset {name.strip()!r}.")
        except WorkbenchError as exc:
            common.show_error(exc)
    is_adapter = checkpoint != "base" and not checkpoint.startswith("remote:")
    if right.button(f"Save with {checkpoint}", key="lab-save-checkpoint", disabled=not is_adapter):
        try:
            common.check_admin(token)
            path = presets.save_to_checkpoint(cfg, checkpoint, gen)
            st.success(f"Saved as {path.name} in {checkpoint}: its default whenever it is chosen.")
        except WorkbenchError as exc:
            common.show_error(exc)


def _axes() -> dict[str, list[float]]:
    cols = st.columns(4)
    first = cols[0].selectbox("First axis", sweep.AXES, key="lab-axis-1", format_func=sweep.AXIS_LABELS.get)
    axes = {first: cols[1].multiselect("Values", AXIS_VALUES[first], FIRST_VALUES[first], key=f"lab-values-{first}")}
    others = [NO_SECOND] + [a for a in sweep.AXES if a != first]
    second = cols[2].selectbox(
        "Second axis",
        others,
        index=others.index("top_p") if "top_p" in others else 1,
        key="lab-axis-2",
        format_func=lambda a: sweep.AXIS_LABELS.get(a, a),
    )
    if second != NO_SECOND:
        values = FIRST_VALUES[second]
        axes[second] = cols[3].multiselect("Values", AXIS_VALUES[second], values, key=f"lab-values-{second}")
    return axes


def _run_sweep(choices, checkpoint, messages, references, gen) -> None:
    axes = _axes()
    left, middle, right = st.columns([2, 1, 1])
    checkpoints = left.multiselect("Checkpoints", choices, default=[checkpoint], key="lab-sweep-checkpoints")
    samples = middle.number_input("Samples per setting", 1, 10, 3, key="lab-samples")
    new_tokens = right.number_input("Max new tokens", 1, 512, 32, key="lab-max-new-tokens")
    logprob = st.checkbox("Measure the mean token log-probability (transformers reference)", True, key="lab-logprob")
    cells = len(checkpoints) * int(samples)
    for values in axes.values():
        cells *= len(values)
    st.caption(f"{cells} generations (at most {sweep.MAX_RUNS}).")
    if not st.button("Run the sweep", type="primary", key="lab-go"):
        return
    bar = st.progress(0.0, text="Generating…")
    try:
        _check(checkpoints, gen.replace(max_new_tokens=int(new_tokens)), cells)
        engine = common.engine()
        outputs = sweep.run(
            engine,
            messages,
            checkpoints,
            axes,
            samples=int(samples),
            max_new_tokens=int(new_tokens),
            base=gen,
            progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total}"),
        )
        scorer = (lambda text, ckpt: mean_logprob(engine, messages, text, ckpt)) if logprob else None
        table = sweep.measure(outputs, references, scorer)
        st.session_state["lab-result"] = (messages, outputs, table)
    except WorkbenchError as exc:
        common.show_error(exc)
    bar.empty()


def _check(checkpoints: list[str], gen: GenerationSettings, outputs: int) -> None:
    """Refuse what this caller may not ask for (checkpoints, sizes), then count `outputs` against a visitor's reply
    limit, before the model is asked; raises WorkbenchError with one sentence."""
    common.check_request("", None, checkpoints, gen)
    common.take_replies(outputs)


def _show_sweep(messages) -> None:
    held = st.session_state.get("lab-result")
    if held is None or held[0] != messages:
        return
    _, outputs, table = held
    axes = sweep.axes_of(outputs)
    metrics = [m for m in METRIC_LABELS if m in table and table[m].notna().any()]
    metric = st.selectbox("Measure", metrics, format_func=METRIC_LABELS.get, key="lab-metric")
    checkpoints = list(dict.fromkeys(table["checkpoint"]))
    for column, name in zip(st.columns(min(len(checkpoints), 2)) * len(checkpoints), checkpoints, strict=False):
        part = table[table["checkpoint"] == name]
        title = METRIC_LABELS[metric] + (f" · {name}" if len(checkpoints) > 1 else "")
        x = axes[1] if len(axes) > 1 else None
        fig = plots.sweep_heatmap(part, metric, title=title, y=axes[0], x=x, labels=sweep.AXIS_LABELS)
        column.plotly_chart(fig, key=f"lab-heat-{name}")
    common.table(table, hide_index=True, key="lab-measures")
    for key, cell in outputs.groupby(["checkpoint", *axes], sort=True):
        label = " · ".join([key[0]] + [f"{sweep.AXIS_LABELS[a]} {v:g}" for a, v in zip(axes, key[1:], strict=True)])
        with st.expander(label):
            for row in cell.itertuples():
                st.caption(f"seed {row.seed} · {row.new_tokens} tokens · stopped: {row.finish_reason}")
                st.text(row.output or "(empty)")


PREFERENCE_ALL = "every checkpoint"


def _preference() -> None:
    """Which setting raters preferred: Bradley-Terry ratings of the settings from blind votes on settings pairs
    (one checkpoint's outputs under two settings), against the chosen setting (workbench/studio/preference.py)."""
    from workbench.ratings.snapshot import snapshot
    from workbench.studio.preference import AXES, preference_by_setting

    st.header("Which setting raters preferred")
    st.caption(
        "From blind votes between one checkpoint's answers to the same prompt under two settings (the Rate page's "
        "and the Arena's settings pairs): Bradley-Terry ratings with 95% bootstrap intervals, against a setting."
    )
    snap = snapshot(common.store())
    left, right = st.columns(2)
    axis = left.selectbox("Against", AXES, format_func=lambda a: a.replace("_", " "), key="lab-pref-axis")
    scope = right.selectbox("Votes on", [PREFERENCE_ALL, *snap.options()["checkpoints"]], key="lab-pref-checkpoint")
    try:
        table = preference_by_setting(snap, axis=axis, checkpoint=None if scope == PREFERENCE_ALL else scope)
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    if table.empty:
        st.info("No votes compare two settings yet: rate settings pairs on the Rate page or in the Arena.")
        return
    st.plotly_chart(plots.preference_chart(table, axis.replace("_", " ")), key="lab-pref-chart")
    common.table(
        table.round({"rating": 1, "lower": 1, "upper": 1, "win_rate": 3}),
        places={"rating": 1, "lower": 1, "upper": 1},
        hide_index=True,
        key="lab-pref",
    )


def _token_view(checkpoint: str, messages, gen: GenerationSettings) -> None:
    st.header("Token view")
    st.caption(
        "One reply at this setting; each token coloured by the model's probability for it. Hover a token for the "
        "top alternatives and which of them this temperature, top-p and top-k would cut."
    )
    left, middle, right = st.columns(3)
    colour_by = left.radio("Colour by", tokenview.COLOUR_BY, horizontal=True, key="lab-tv-colour")
    k = middle.number_input("Alternatives", 1, 20, 5, key="lab-tv-k")
    seed = right.number_input("Seed", 0, 2**31 - 1, 0, key="lab-tv-seed")
    new_tokens = int(st.session_state.get("lab-max-new-tokens", 32))
    if st.button("Generate a reply and show its tokens", key="lab-tv-go"):
        try:
            chosen = gen.replace(seed=int(seed), max_new_tokens=new_tokens)
            _check([checkpoint], chosen, 1)
            text, rows = lab.reply_tokens(common.engine(), messages, checkpoint, chosen, k=int(k))
            st.session_state["lab-tokens"] = (checkpoint, messages, text, gen, int(k), rows)
        except WorkbenchError as exc:
            common.show_error(exc)
    held = st.session_state.get("lab-tokens")
    if held is None or held[:2] != (checkpoint, messages):
        return
    text, scored, held_k, rows = held[2:]
    if (scored, held_k) != (gen, int(k)):  # the sliders moved: the same reply, read under the new setting
        try:
            _check([checkpoint], gen, 1)  # reading the reply again is a pass of the model
            rows = lab.score_reply(common.engine(), messages, checkpoint, text, gen, k=int(k))
            st.session_state["lab-tokens"] = (checkpoint, messages, text, gen, int(k), rows)
        except WorkbenchError as exc:
            common.show_error(exc)
            return
    st.html(tokenview.token_html(rows, colour_by))
    st.caption(tokenview.summary(rows))
    with st.expander("Every token"):
        common.table(tokenview.token_table(rows), digits=4, hide_index=True, key="lab-tv-table")


def _next_tokens(checkpoint: str, messages, gen: GenerationSettings) -> None:
    st.header("First token")
    k = st.number_input("Tokens to show", 1, 50, 10, key="lab-nt-k")
    if st.button("Show the first token's distribution", key="lab-nt-go"):
        try:
            temperature = gen.temperature
            _check([checkpoint], gen, 1)
            frame = lab.next_tokens(
                common.engine(), messages, checkpoint, k=int(k), temperature=temperature, top_p=gen.top_p
            )
            st.session_state["lab-next"] = (checkpoint, messages, gen.top_p, frame)
        except WorkbenchError as exc:
            common.show_error(exc)
    held = st.session_state.get("lab-next")
    if held is not None and held[:3] == (checkpoint, messages, gen.top_p):
        frame = held[3]
        st.plotly_chart(plots.next_token_bars(frame), key="lab-nt-chart")
        st.caption(f"{int(frame['kept_by_top_p'].sum())} of these {len(frame)} tokens survive top-p {gen.top_p:g}.")
        common.table(frame, digits=4, hide_index=True, key="lab-nt-table")


def main() -> None:
    st.title("Generation lab")
    st.caption(
        "How a prompt's answers change across two settings, why (the token distributions), and saving the one "
        "you chose."
    )
    try:
        choices = common.checkpoint_choices()
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    if not choices:
        st.info(common.NO_CHECKPOINTS)
        return
    checkpoint = st.selectbox("Checkpoint", choices, key="lab-checkpoint", on_change=_on_checkpoint)
    prompt = _prompt()
    if prompt is None:
        return
    messages, references = prompt
    gen = _setting(checkpoint)
    st.header("Sweep")
    st.caption("Settings not swept come from the setting above; sample i of every cell uses seed i.")
    _run_sweep(choices, checkpoint, messages, references, gen)
    _show_sweep(messages)
    _preference()
    _token_view(checkpoint, messages, gen)
    lab_shift.section(choices, checkpoint, messages, gen)
    _next_tokens(checkpoint, messages, gen)


main()
