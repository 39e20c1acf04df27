"""The Lab page's "What did the checkpoint change?" section: one reply to the Lab's prompt read under the chosen
checkpoint and another of the same base model (each token coloured by how far its probability moved, both
probabilities on hover), and over a suite of prompts the tokens whose probability moved most.

Widgets and wiring only, called by pages/lab.py: the work is workbench/generation/tokenshift.py and
workbench/studio/tokenshift.py, the drawing workbench/views/tokenshift.py. A visitor's request is checked like the
Lab's token view (pages/common.py: the checkpoints they may choose, the sizes of the setting) and every generation
and teacher-forced pass counts against their reply limit before the model is asked.
"""

from __future__ import annotations

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.generation.tokenshift import check_pair, token_shift
from workbench.registry import BASE_NAME
from workbench.studio import tokenshift as suite_shift
from workbench.views import tokenshift


def _check(checkpoints: list[str], gen: GenerationSettings, passes: int) -> None:
    """Refuse what this caller may not ask for, then count `passes` against their reply limit (one sentence)."""
    common.check_request("", None, checkpoints, gen)
    common.take_replies(passes)


def _one_reply(checkpoint: str, against: str, messages, gen: GenerationSettings) -> None:
    new_tokens = int(st.session_state.get("lab-max-new-tokens", 32))
    if st.button(f"Generate a reply with {checkpoint} and show what changed", key="lab-shift-go"):
        try:
            before, after = check_pair(common.engine(), against, checkpoint)
            chosen = gen.replace(seed=int(st.session_state.get("lab-tv-seed", 0)), max_new_tokens=new_tokens)
            _check([before, after], chosen, 3)  # one reply and two teacher-forced passes
            text, _ = common.engine().generate(messages, chosen, after)
            rows = token_shift(common.engine(), messages, text, before, after)
            st.session_state["lab-shift"] = (before, after, messages, rows)
        except WorkbenchError as exc:
            common.show_error(exc)
    held = st.session_state.get("lab-shift")
    if held is None or held[:3] != (against, checkpoint, messages):
        return
    rows = held[3]
    st.html(tokenshift.shift_html(rows, against, checkpoint))
    st.caption(tokenshift.shift_summary(rows, against, checkpoint))
    with st.expander("Every token, under both"):
        common.table(tokenshift.shift_table(rows), digits=4, hide_index=True, key="lab-shift-table")


def _over_a_suite(checkpoint: str, against: str, gen: GenerationSettings) -> None:
    from workbench.evaluation.suites import find_suite, list_suites

    st.subheader("Over a suite of prompts")
    names = [s.name for s in list_suites() if s.kind == "generation"]
    cols = st.columns(4)
    suite = cols[0].selectbox("Suite", names, key="lab-shift-suite")
    limit = cols[1].number_input("Prompts", 1, suite_shift.MAX_PROMPTS, 8, key="lab-shift-limit")
    replies = cols[2].radio(
        "Replies read",
        suite_shift.REPLIES,
        key="lab-shift-replies",
        help=f"the suite's references, or {checkpoint}'s own greedy replies at the suite's settings",
    )
    min_count = cols[3].number_input("Seen at least", 1, 50, 2, key="lab-shift-min-count")
    if st.button("Find the tokens that moved most", key="lab-shift-suite-go"):
        bar = st.progress(0.0, text="Reading…")
        try:
            before, after = check_pair(common.engine(), against, checkpoint)
            generated = replies == "generated"  # then the suite's own settings generate, within the caller's sizes
            asked = find_suite(suite).generation if generated else gen.replace(max_new_tokens=1)
            _check([before, after], asked, int(limit) * (3 if generated else 2))
            readings = suite_shift.suite_shift(
                common.engine(),
                suite,
                before,
                after,
                limit=int(limit),
                replies=replies,
                progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total}"),
            )
            st.session_state["lab-shift-result"] = (before, after, suite, replies, readings)
        except WorkbenchError as exc:
            common.show_error(exc)
        bar.empty()
    held = st.session_state.get("lab-shift-result")
    if held is None or held[:2] != (against, checkpoint):
        return
    table = suite_shift.moved_most(held[4], top=20, min_count=int(min_count))
    if table.empty:
        st.info(f"No token appears {int(min_count)} times or more in these replies: lower 'Seen at least'.")
        return
    st.plotly_chart(tokenshift.moved_bars(table, against, checkpoint), key="lab-shift-chart")
    st.caption(f"{len(held[4])} replies of {held[2]} ({held[3]}); mean shift in nats, count in brackets.")
    common.table(table, digits=4, hide_index=True, key="lab-shift-moved")


def section(choices: list[str], checkpoint: str, messages, gen: GenerationSettings) -> None:
    """The section, comparing `checkpoint` (the Lab's) with another of `choices`."""
    st.header("What did the checkpoint change?")
    st.caption(
        f"The same reply read under {checkpoint} and the checkpoint chosen here (the adapter switched off for the "
        "base): each token coloured by how much likelier (blue) or less likely (orange) it became, both "
        "probabilities on hover."
    )
    others = [name for name in choices if name != checkpoint]
    if not others:
        st.info("There is no other checkpoint to compare with: train an adapter on the Fine-tune tab.")
        return
    default = others.index(BASE_NAME) if BASE_NAME in others else 0
    against = st.selectbox("Compare with", others, index=default, key="lab-shift-against")
    _one_reply(checkpoint, against, messages, gen)
    _over_a_suite(checkpoint, against, gen)
