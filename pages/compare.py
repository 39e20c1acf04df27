"""Compare page: one prompt, 2 to 4 checkpoints, one set of generation settings, outputs side by side.

Outputs are generated for all columns at once, stream into their columns one after another and are stored;
the same request later is shown from the store (and says so). A whole prompt set can be run over the chosen
checkpoints with a progress bar. Widgets and wiring only: the work is in workbench/studio/compare.py.

A visitor (not the owner, see pages/common.py) has the app's limits: their sizes, the checkpoints they may
choose, every generated output counted against their reply limit before it starts, a prompt-set run of at most
VISITOR_RUN_OUTPUTS outputs; the prompt they type (or a set's prompt under their own system prompt) is kept in
the set waiting for the owner's approval (workbench/store/visitors.py), so it is not served to other raters.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.store import VISITOR_PROMPTS
from workbench.store.records import settings_label
from workbench.studio import compare
from workbench.views.markup import plain_markdown

TYPED, FROM_SET = "Type a prompt", "A prompt set"
VISITOR_RUN_OUTPUTS = 64  # prompts x checkpoints in one visitor's prompt-set run (the Lab's sweep holds as many)
CHECKPOINTS, SETTINGS = "Checkpoints side by side", "One checkpoint under two settings"
SECOND_PRESET = "creative"  # where the second settings start: visibly different from the defaults


def _short(text: str, n: int = 90) -> str:
    line = " ".join(text.split())
    return line if len(line) <= n else line[: n - 1] + "…"


def _pick_prompt(store) -> tuple[str, str | None, int | None]:
    """The prompt text, its system prompt from a prompt set (if any), and its prompt-set id."""
    source = st.radio(
        "Prompt source", [TYPED, FROM_SET], horizontal=True, key="cmp-source", label_visibility="collapsed"
    )
    if source == TYPED:
        text = st.text_area("Prompt", key="cmp-prompt", placeholder="Ask the checkpoints something…", height=100)
        return text, None, None
    sets = _prompt_sets(store)
    if not sets:
        st.info("The store has no prompt sets yet: `python -m workbench prompts --load` adds the shipped ones.")
        return "", None, None
    name = st.selectbox("Prompt set", sets, key="cmp-set")
    prompts = store.prompts(name)
    index = st.selectbox(
        "Prompt", range(len(prompts)), format_func=lambda i: f"{i + 1}. {_short(prompts[i]['text'])}", key="cmp-index"
    )
    chosen = prompts[index]
    st.text(chosen["text"])
    return chosen["text"], chosen["system_prompt"], chosen["id"]


def _prompt_sets(store) -> list[str]:
    """The prompt sets this caller may pick from: visitors' prompts waiting for approval only for the owner."""
    owner = common.is_owner()
    return [s["name"] for s in store.prompt_sets() if owner or s["name"] != VISITOR_PROMPTS]


def _held(store, requests: list[compare.Request]) -> list[compare.Request]:
    """The requests answering the visitor's own prompt, recorded in the set waiting for the owner's approval."""
    pid = store.visitor_prompt(requests[0].prompt, requests[0].system_prompt)
    return [dataclasses.replace(r, prompt_id=pid) for r in requests]


def _show(column, checkpoint: str, record, from_store: bool) -> None:
    column.markdown(f"#### {plain_markdown(checkpoint)}")
    column.caption(("From the store · " if from_store else "Generated now · ") + compare.summary(record))
    column.text(record.output or "(empty reply)")
    column.caption(settings_label(record.settings))  # tells two columns of one checkpoint apart


def _run(store, requests: list[compare.Request], reuse: bool, hold: bool) -> list[dict]:
    """Show each output in its column: from the store, or generated now (all columns at once, each streamed
    into its column in turn) and then stored; with `hold`, what is generated answers a visitor's own prompt."""
    found = [compare.stored(store, common.settings(), r) if reuse else None for r in requests]
    if any(f is None for f in found):
        common.take_replies(sum(f is None for f in found))  # before anything starts
        if hold:
            requests = _held(store, requests)
    missing = [r for r, f in zip(requests, found, strict=True) if f is None]
    columns = st.columns(len(requests))
    engine = common.engine() if missing else None
    replies = iter(engine.start_many([(r.messages, r.settings, r.checkpoint) for r in missing]) if missing else [])
    shown = []
    for column, request, record in zip(columns, requests, found, strict=True):
        if record is not None:
            _show(column, request.checkpoint, record, True)
            shown.append({"checkpoint": request.checkpoint, "record": record, "from_store": True})
            continue
        column.markdown(f"#### {plain_markdown(request.checkpoint)}")
        status, placeholder = column.empty(), column.empty()
        column.caption(settings_label(request.settings.to_dict()))
        status.caption("Generating…")
        reply, text = next(replies), ""
        for chunk in reply:
            text += chunk
            placeholder.text(text + " ▌")
        record = compare.save(store, engine, request, reply)
        status.caption("Generated now · " + compare.summary(record))
        placeholder.text(record.output or "(empty reply)")
        shown.append({"checkpoint": request.checkpoint, "record": record, "from_store": False})
    return shown


def _prompt_set_section(store, chosen: list[str], gens: list) -> None:
    st.subheader("Run a whole prompt set")
    sets = _prompt_sets(store)
    if not sets:
        st.caption("No prompt sets in the store.")
        return
    left, right = st.columns([3, 1])
    name = left.selectbox("Prompt set to run", sets, key="cmp-run-set")
    limit = right.number_input("Prompts (0 = all)", 0, 10_000, 5, key="cmp-run-limit")
    total = len(store.prompts(name)) if not limit else min(limit, len(store.prompts(name)))
    what = f"{len(chosen)} checkpoints" if len(gens) == 1 else f"{len(gens)} settings"
    st.caption(f"{total} prompts × {what}, with the settings above; stored outputs are re-used.")
    if st.button("Run the prompt set", key="cmp-run-go", disabled=not chosen or None in gens):
        bar = st.progress(0.0, text="Starting…")

        def progress(done: int, total: int, label: str) -> None:
            bar.progress(done / total, text=f"{done} of {total}: {label}")

        with common.user_errors():
            _check_run(total * len(set(chosen)) * len(gens), chosen, gens)
            counts = {"generated": 0, "from_store": 0}
            for gen in gens:  # two settings make settings pairs for the Rate page
                done = compare.run_prompt_set(
                    common.engine(),
                    store,
                    name,
                    chosen,
                    gen,
                    limit=int(limit) or None,
                    progress=progress,
                    before_generating=common.take_replies,  # each output the store lacks counts, before any starts
                )
                counts = {k: counts[k] + done[k] for k in counts}
            st.success(f"Done: {counts['generated']} outputs generated, {counts['from_store']} taken from the store.")


def _check_run(outputs: int, chosen: list[str], gens: list) -> None:
    """Refuse a prompt-set run a visitor may not ask for: too many outputs, sizes, checkpoints."""
    if not common.is_owner() and outputs > VISITOR_RUN_OUTPUTS:
        raise WorkbenchError(
            f"That run asks for {outputs} outputs; a visitor's run is at most {VISITOR_RUN_OUTPUTS}: run fewer prompts."
        )
    for gen in gens:
        common.check_request("", None, chosen, gen)


def _what(choices: list[str]) -> str:
    """Checkpoints side by side, or one checkpoint under two settings (the only choice with the base model alone,
    so a fresh install can compare something)."""
    if len(choices) < 2:
        st.info(
            "Only the base model is here, so compare it under two generation settings. Train an adapter (Gradio "
            "app, Fine-tune tab) to compare checkpoints side by side."
        )
        return SETTINGS
    return st.radio("Compare", [CHECKPOINTS, SETTINGS], horizontal=True, key="cmp-what")


def _requests(chosen: list[str], gens: list, text: str, system: str, prompt_id) -> list[compare.Request]:
    """The comparison's requests (every checkpoint under every setting), refused in one sentence when they would
    not compare anything."""
    if len(gens) > 1:
        if gens[0] == gens[1]:
            raise WorkbenchError("The two settings are the same: change one of them to compare.")
    else:
        chosen = compare.check_checkpoints(chosen)
    return [compare.Request(text, c, g, system or None, prompt_id) for c in chosen for g in gens]


def main() -> None:
    st.title("Compare checkpoints")
    st.caption(
        "The same prompt to 2 to 4 checkpoints, or to one checkpoint under two settings, side by side. Every "
        "output is stored for rating."
    )
    store, cfg = common.store(), common.settings()
    try:
        choices = common.checkpoint_choices()
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    if not choices:
        st.info(common.NO_CHECKPOINTS)
        return
    what = _what(choices)
    text, set_system, prompt_id = _pick_prompt(store)
    system = st.text_input("System prompt (optional)", value=set_system or "", key="cmp-system")
    if what == SETTINGS:
        chosen = [st.selectbox("Checkpoint", choices, key="cmp-checkpoint")]
        gens = [common.generation_settings("cmp"), common.generation_settings("cmp-b", preset=SECOND_PRESET)]
    else:
        chosen = st.multiselect(
            "Checkpoints (2 to 4)", choices, default=choices[:2], max_selections=4, key="cmp-checkpoints"
        )
        gens = [common.generation_settings("cmp")]
    fresh = st.checkbox("Generate anew even when the store has this output", key="cmp-fresh")
    ready = None not in gens
    if st.button("Compare", type="primary", key="cmp-go", disabled=not ready):
        try:
            requests = _requests(chosen, gens, text, system, prompt_id)
            for gen in gens:  # this caller's sizes and checkpoints, before any work
                common.check_request(text, system, [r.checkpoint for r in requests], gen)
            compare.stored(store, cfg, requests[0])  # refuses an empty prompt before any column is drawn
            # A visitor's own words (a typed prompt, or their own system prompt) wait for the owner's approval.
            hold = not common.is_owner() and (prompt_id is None or (system or None) != (set_system or None))
            st.session_state["cmp-results"] = _run(store, requests, reuse=not fresh, hold=hold)
        except WorkbenchError as exc:
            common.show_error(exc)
    elif st.session_state.get("cmp-results"):
        shown = st.session_state["cmp-results"]
        for column, item in zip(st.columns(len(shown)), shown, strict=True):
            _show(column, item["checkpoint"], item["record"], item["from_store"])
    st.divider()
    _prompt_set_section(store, chosen, gens)


main()
