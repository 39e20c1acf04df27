"""Rate page: blind pairwise votes (A better / B better / tie / both bad) and 1-5 scores, one item at a time.

The rater gives a name (the owner only: on their own dashboard, from this machine) or is anonymous under the
keyed id of their address (pages/common.session_id, the Arena's id too); ballots count once per rater and pair.
The item being shown lives in session state with its idempotency key, and each button sends that key with the
vote, so a double click or a repeated submission records one vote; names are revealed only after the vote.
Every vote is written at once.
Pairs are chosen by the sampler (`workbench.ratings.pairs`, WORKBENCH_PAIRS), which serves nothing once the
ranking is settled. Widgets and wiring only: serving items and recording votes is workbench.store.
"""

from __future__ import annotations

import streamlit as st

from pages import common
from workbench.errors import WorkbenchError
from workbench.ratings import pairs
from workbench.store import check_rater
from workbench.views.markup import plain_markdown, vote_receipt

PAIRWISE, LIKERT = "Pairwise: which is better?", "Single output: score 1 to 5"
SETTINGS_PAIR = "Pairwise: same checkpoint, two generation settings"  # which setting people prefer
CHOICES = (("left", "A is better"), ("right", "B is better"), ("tie", "Tie"), ("bothbad", "Both are bad"))
SCORES = {1: "1 · bad", 2: "2 · poor", 3: "3 · fair", 4: "4 · good", 5: "5 · excellent"}


def _rater() -> tuple[str | None, str]:
    """The rater's name (None when anonymous) and the browser session id; stops the page on a bad name."""
    sid = common.session_id()
    if not common.is_owner():  # a visitor could type anyone's name: they rate under their keyed voter id
        st.caption(f"Rating anonymously as visitor `{sid[:16]}`.")
        return None, sid
    name = st.text_input(
        "Your name (leave empty to rate anonymously)", key="rate-name", max_chars=64, placeholder="e.g. alice"
    )
    if not name.strip():
        st.caption(f"Rating anonymously as visitor `{sid[:16]}`.")
        return None, sid
    try:
        return check_rater(name), sid
    except WorkbenchError as exc:
        common.show_error(exc)
        st.stop()
        raise


def _record_vote(store, item, choice: str, rater: str | None, sid: str) -> None:
    """Button callback: write the vote (its key makes a repeat a no-op), remember what to reveal, move on."""
    reason = st.session_state.get(f"reason-{item.key}")
    try:
        common.take_vote()
        kept = store.kept_choice(item, store.vote_on_pair(item, choice, rater=rater, reason=reason, session=sid))
    except WorkbenchError as exc:
        st.session_state["rate-error"] = str(exc)
        return
    st.session_state["rate-revealed"] = vote_receipt(
        kept, item.left.checkpoint, item.right.checkpoint, item.left.settings, item.right.settings
    )
    st.session_state.pop("rate-pair", None)


def _record_score(store, item, rater: str | None, sid: str) -> None:
    """Button callback for a 1-5 score (same idempotency as a vote)."""
    score = st.session_state.get(f"score-{item.key}")
    if score is None:
        st.session_state["rate-error"] = "Pick a score from 1 to 5 first."
        return
    comment = st.session_state.get(f"comment-{item.key}")
    try:
        common.take_vote()
        store.add_likert(item.generation.id, int(score), rater=rater, comment=comment, session=sid, key=item.key)
    except WorkbenchError as exc:
        st.session_state["rate-error"] = str(exc)
        return
    st.session_state["rate-revealed"] = (
        f"Recorded: {score}. That output was from **{plain_markdown(item.generation.checkpoint)}**."
    )
    st.session_state.pop("rate-likert", None)


def _current(kind: str, identity: tuple, fetch):
    """The item this rater is on (kept across reruns), or a new one from the store."""
    key = f"rate-{kind}"
    held = st.session_state.get(key)
    if held is None or held[0] != identity:
        held = (identity, fetch())
        st.session_state[key] = held
    return held[1]


def _prompt(record) -> None:
    """The conversation both outputs answer: system prompt, earlier turns, then the prompt."""
    if record.system_prompt:
        st.caption("System prompt")
        st.text(record.system_prompt)
    earlier = [m for m in record.messages[:-1] if m["role"] != "system"]
    if earlier:
        st.caption("Earlier in the conversation")
        st.text("\n".join(f"{m['role']}: {m['content']}" for m in earlier))
    st.caption("Prompt")
    st.text(record.prompt)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _pairwise(store, rater: str | None, sid: str, differ: str = "checkpoint") -> None:
    settings = common.settings()  # WORKBENCH_PAIRS: the sampler picks the two contestants
    item = _current(
        "pair", (rater, sid, differ), lambda: pairs.next_pair(store, settings, rater, session=sid, differ=differ)
    )
    if item is None and (settled := pairs.arena_note(store, settings, differ)):
        st.success(settled, icon=":material/check:")
        return
    if item is None:
        _offer_pairs(store, differ, voted=bool(store.rater_progress(rater, session=sid).votes))
        return
    _prompt(item.a)
    left, right = st.columns(2)
    for column, label, record in ((left, "A", item.left), (right, "B", item.right)):
        with column.container(border=True):
            st.markdown(f"**{label}**")
            st.text(record.output)
    st.text_input("Why? (optional)", key=f"reason-{item.key}", max_chars=2000)
    for column, (choice, label) in zip(st.columns(len(CHOICES)), CHOICES, strict=True):
        column.button(
            label,
            key=f"vote-{choice}-{item.key}",
            on_click=_record_vote,
            args=(store, item, choice, rater, sid),
            width="stretch",
            type="primary" if choice in ("left", "right") else "secondary",
        )


def _offer_pairs(store, differ: str, voted: bool) -> None:
    """No pair left for this rater: say so, and offer to make some now (with only the base model, settings pairs
    of it), so the page never ends in a dead end."""
    from workbench.studio import compare

    if voted:
        st.info("You have rated every pair on offer.")
    else:
        st.info("There are no pairs to rate yet.")
    kind = differ
    try:
        offered = common.checkpoint_choices()  # what this caller may choose (WORKBENCH_VISITOR_CHECKPOINTS)
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    if differ == "checkpoint" and len(offered) < 2:
        kind = "settings"  # one model alone cannot make checkpoint pairs
        st.caption("Only the base model is here, so its pairs differ in generation settings.")
    what = "of the base model under two settings" if kind == "settings" else "of the first two checkpoints"
    st.caption(
        f"Make pairs: the first {compare.PAIR_PROMPTS} prompts of {compare.PAIR_SET} answered {what} (the Compare "
        "page makes any pair you like)."
    )
    if not st.button(f"Make {compare.PAIR_PROMPTS} pairs to rate", key=f"rate-make-{differ}", type="primary"):
        return
    bar = st.progress(0.0, text="Generating…")
    try:
        compare.make_pairs(
            common.engine(),
            store,
            kind,
            progress=lambda d, t, label: bar.progress(d / t, text=f"{d} of {t}: {label}"),
            offered=offered,
            before_generating=common.take_replies,  # a visitor's reply budget counts each new output first
        )
    except WorkbenchError as exc:
        common.show_error(exc)
        return
    st.session_state.pop("rate-pair", None)  # fetch again: there are pairs now
    st.session_state["rate-kind-next"] = SETTINGS_PAIR if kind == "settings" else PAIRWISE
    st.rerun()


def _likert(store, rater: str | None, sid: str) -> None:
    item = _current("likert", (rater, sid), lambda: store.next_likert_for(rater, session=sid))
    if item is None:
        st.info("You have scored every output on offer.")
        return
    _prompt(item.generation)
    with st.container(border=True):
        st.text(item.generation.output)
    st.radio("Score", list(SCORES), format_func=SCORES.get, horizontal=True, index=None, key=f"score-{item.key}")
    st.text_input("Comment (optional)", key=f"comment-{item.key}", max_chars=2000)
    st.button(
        "Submit score", key=f"submit-{item.key}", type="primary", on_click=_record_score, args=(store, item, rater, sid)
    )


def _progress(store, rater: str | None, sid: str) -> None:
    progress = store.rater_progress(rater, session=sid)
    left = progress.pairs_left + progress.likert_left
    total = progress.done + left
    st.progress(progress.done / total if total else 0.0)  # nothing on offer is not "all done"
    st.caption(
        f"{progress.rater}: {_count(progress.votes, 'pairwise vote')} and {_count(progress.likert, 'score')} given; "
        f"{_count(progress.pairs_left, 'pair')} and {_count(progress.likert_left, 'output')} left."
    )


def main() -> None:
    st.title("Rate outputs")
    st.caption("Outputs are shown without the checkpoint's name; it is revealed after you vote.")
    store = common.store()
    rater, sid = _rater()
    if "rate-kind-next" in st.session_state:  # where "make pairs" sends the rater (set before the radio is drawn)
        st.session_state["rate-kind"] = st.session_state.pop("rate-kind-next")
    kind = st.radio("What to rate", [PAIRWISE, SETTINGS_PAIR, LIKERT], horizontal=True, key="rate-kind")
    if "rate-error" in st.session_state:
        common.show_error(st.session_state.pop("rate-error"))
    if "rate-revealed" in st.session_state:
        st.success(st.session_state.pop("rate-revealed"), icon=":material/check:")
    _progress(store, rater, sid)
    if kind == LIKERT:
        _likert(store, rater, sid)
    else:
        _pairwise(store, rater, sid, "settings" if kind == SETTINGS_PAIR else "checkpoint")


main()
