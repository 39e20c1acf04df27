"""Wiring shared by the dashboard pages: settings, the store (opened once), the engine (loaded on first use), errors.

Not a page itself (dashboard.py lists the pages). The store is opened once per process with
`st.cache_resource` and the shipped prompt sets are loaded into it the first time; the `ChatEngine` is loaded
only when a page generates text, also once per process. Errors a user can fix (`WorkbenchError`) are shown
with `st.error` as their one sentence, escaped, with secrets masked and server paths shortened.

Who is asking is decided per run by the same gate as the Gradio app's requests (`workbench.gate`): `visitor()` is
the run's Visitor (address key behind the settings' trusted proxies, owner or not, sizes). The owner (this machine
on a dashboard that listens on loopback, or everyone with WORKBENCH_ADMIN_OPEN=1) gets the owner's sizes, no rate
limits and typed rater names; every other caller is a visitor, whose generations count against the reply limit
(`take_replies`), whose votes against the vote limit (`take_vote`), both keyed by address as in the app, and who
may choose only the checkpoints WORKBENCH_VISITOR_CHECKPOINTS allows (`checkpoint_choices`, `check_request`).
Errors reach the page through the gate's one funnel (`workbench.gate.sentence`). Admin actions go through
`check_admin` (the one throttle).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import streamlit as st

from workbench.access import SHELL, Caller
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.sentence import public_sentence
from workbench.views.markup import plain_markdown

if TYPE_CHECKING:
    from workbench.gate.sizes import Sizes
    from workbench.gate.visitor import Visitor
    from workbench.generation.router import Router
    from workbench.generation.settings import GenerationSettings
    from workbench.store import Store


def sentence(exc: BaseException | str) -> str:
    """What a page shows of an error: the gate's one public sentence (secrets, URLs and server paths hidden, one
    line, capped), the same funnel as the app's."""
    return public_sentence(exc, (settings().home,))


def show_error(exc: BaseException | str) -> None:
    """One sentence in a red box (see `sentence`), with nothing in it interpreted as Markdown or HTML."""
    st.error(plain_markdown(sentence(exc)), icon=":material/error:")


def _listen_address() -> str:
    """Where this Streamlit server listens: its `server.address` option, all interfaces when unset."""
    return st.get_option("server.address") or "0.0.0.0"


def caller_from(peer: object, headers: object, config: Settings) -> Caller:
    """The Caller of one Streamlit run from `st.context.ip_address` and `st.context.headers`.

    Streamlit reports a loopback peer (127.0.0.1, ::1) as None, so None is taken for loopback; whether the run
    is this machine's own is then decided by the headers (`workbench.access.is_local_request`), which a run with
    no connection (a session whose browser went away) lacks, so it is a visitor. A peer that is neither text nor
    None is no connection at all: Streamlit's AppTest runs the pages in this process with a mock runtime, and
    that is this machine's shell. A dashboard has no share link.
    """
    from workbench.access import caller

    if peer is not None and not isinstance(peer, str):
        return SHELL
    return caller(peer or "127.0.0.1", headers, trusted_proxies=config.trusted_proxies, shared=False)


def caller() -> Caller:
    """Who runs this page: their address key (behind the settings' trusted proxies) and whether they really are
    this machine (see `caller_from`)."""
    return caller_from(st.context.ip_address, st.context.headers, settings())


def client() -> str:
    """The visitor's address key (behind the Space's proxy when there is one), for per-visitor limits."""
    return caller().address


def visitor() -> Visitor:
    """This run's Visitor (`workbench.gate.visitor`): address key, owner or not, sizes."""
    from workbench.gate.visitor import visitor_of

    return visitor_of(settings(), caller())


def is_owner() -> bool:
    """Whether this run is the owner's (`Settings.is_owner`): the owner's sizes, no rate limits, typed names."""
    return visitor().owner


def sizes() -> Sizes:
    """What one request of this caller may hold (the visitor's or the owner's `Sizes`)."""
    return visitor().sizes


def check_admin(token: str | None) -> None:
    """Raise WorkbenchError unless this caller may take an admin action with `token` (the one throttle)."""
    settings().check_admin(token, caller())


def admin_refusal(token: str | None) -> str | None:
    """None when this caller may take admin actions with `token`, else the one sentence that says why not (the
    same sentence wherever it is asked, through the one throttle)."""
    try:
        check_admin(token)
    except WorkbenchError as exc:
        return str(exc)
    return None


def admin_allowed(token: str | None) -> bool:
    """Whether this caller may take admin actions with `token` (through the same throttle), for what a page shows."""
    return admin_refusal(token) is None


def admin_token_box(container, key: str) -> str | None:
    """A password box for the admin token in `container` when WORKBENCH_ADMIN_TOKEN is set (else None)."""
    if not settings().admin_token:
        return None
    return container.text_input("Admin token", type="password", key=key)


def settings() -> Settings:
    """Settings from the WORKBENCH_* environment (admin actions decided by where the dashboard listens);
    a bad value stops the page with its sentence."""
    try:
        return Settings.from_env(host=_listen_address())
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
        raise


@st.cache_resource(show_spinner="Opening the store…")
def _open_store(url: str, token: str | None, open_to: str) -> Store:
    from workbench.access import Policy
    from workbench.store import Store
    from workbench.studio.promptsets import load_shipped

    store = Store(url, access=Policy(token, open_to))
    load_shipped(store)
    return store


def store() -> Store:
    """The store named by the settings, opened once per process (the shipped prompt sets loaded into it), with
    the settings' access policy (`Settings.access`); pages check admin actions with `store.check_admin(token,
    caller())`."""
    s = settings()
    try:
        return _open_store(s.db_url, s.access.token, s.access.open_to)
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
        raise


@st.cache_resource
def _router(config: Settings) -> Router:
    from workbench.generation.router import Router

    return Router(config)  # each model loads on its first request and stays for the process


def engine() -> Router:
    """What generates for every page: the configured model ("base" and its adapters) and the remote models of
    registry.yaml ("remote:NAME"), each loaded on first use and kept for the process. A visitor's requests may not
    make llama.cpp drop a loaded adapter (`Router.for_visitors`)."""
    router = _router(settings())
    return router if is_owner() else router.for_visitors()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a WorkbenchError raised inside the block as one sentence instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        show_error(exc)


def session_id() -> str:
    """The anonymous voter id of this visitor: from their address as our proxy saw it, so a reload, a new tab or
    an edited URL cannot make a second voter (ballots count once per voter and pair); keyed with the store's
    secret (`workbench.access.voter_id`), the same id the app's Arena gives the same address."""
    return visitor().voter(settings())


def take_vote() -> None:
    """Count one vote against this visitor's hourly limit, keyed by address as in the app (never the owner's);
    raises WorkbenchError past it."""
    from workbench.gate.limits import limits_for

    limits_for(settings()).take_vote(visitor())


def take_replies(n: int = 1) -> None:
    """Count `n` generated outputs against this visitor's per-minute reply limit, all or none, before any is
    generated (never the owner's); raises WorkbenchError with one sentence past it."""
    from workbench.gate.limits import limits_for

    limits_for(settings()).take_reply(visitor(), n)


def checkpoint_choices() -> list[str]:
    """The checkpoints this caller may choose: every one for the owner, those WORKBENCH_VISITOR_CHECKPOINTS
    allows for a visitor (remote models may cost money). Raises WorkbenchError when the model is unusable."""
    from workbench.gate.checkpoints import may_choose
    from workbench.studio.compare import checkpoint_choices as every

    config, owner = settings(), is_owner()
    return [name for name in every(config) if may_choose(config, owner, name)]


NO_CHECKPOINTS = "No checkpoint is offered to visitors on this server."


def check_request(text: str, system_prompt: str | None, checkpoints: list[str], gen: GenerationSettings) -> None:
    """Refuse (WorkbenchError, one sentence) a request larger than this caller's sizes, or a checkpoint they may
    not choose; the widgets limit nothing a client cannot change."""
    from workbench.gate.checkpoints import check_checkpoint
    from workbench.gate.sizes import check_chat

    who = visitor()
    check_chat(who.sizes, text or "", system_prompt or "", [], gen)
    for name in checkpoints:
        check_checkpoint(settings(), who.owner, name)


def _apply_preset(prefix: str) -> None:
    """Fill the setting widgets from the chosen preset (a callback: it runs before they are drawn again)."""
    from workbench.generation import presets

    name = st.session_state.get(f"{prefix}-preset")
    if not name:
        return
    try:
        gen = presets.preset(settings(), name)
    except WorkbenchError as exc:
        show_error(exc)
        return
    for field, key in (("temperature", "temperature"), ("top_p", "top-p"), ("top_k", "top-k")):
        st.session_state[f"{prefix}-{key}"] = getattr(gen, field)
    st.session_state[f"{prefix}-repetition-penalty"] = gen.repetition_penalty
    st.session_state[f"{prefix}-max-new-tokens"] = gen.max_new_tokens


def _preset_picker(prefix: str, default: str) -> None:
    from workbench.generation import presets

    try:
        names = list(presets.presets(settings()))
    except WorkbenchError as exc:
        show_error(exc)
        names = list(presets.SHIPPED)
    st.selectbox(
        "Preset",
        names,
        index=names.index(default) if default in names else None,
        placeholder="Start from a preset…",
        key=f"{prefix}-preset",
        on_change=_apply_preset,
        args=(prefix,),
    )


def _start(prefix: str, default: str):
    """The values the widgets start from: the default preset (the Chat tab's too), as the selectbox shows it."""
    from workbench.generation import presets

    try:
        return presets.preset(settings(), default)
    except WorkbenchError:  # a user preset named as the default and then removed: the built-in defaults
        return presets.SHIPPED[presets.DEFAULT_PRESET]


def generation_settings(prefix: str, *, max_new_tokens: int = 128, seed: int = 0, preset: str | None = None):
    """Generation-setting widgets (in an expander); returns GenerationSettings, or None after showing an error.

    They start from `preset` (the default preset, `presets.DEFAULT_PRESET`, when None), which the preset box
    shows as chosen. The seed defaults to a fixed value so the same request gives the same output and can be
    re-shown from the store; -1 asks for a random seed each time.
    """
    from workbench.generation import presets
    from workbench.generation.settings import GenerationSettings

    preset = preset or presets.DEFAULT_PRESET
    d = _start(prefix, preset)
    label = "Generation settings" if preset == presets.DEFAULT_PRESET else f"Generation settings ({preset})"
    with st.expander(label, expanded=False):
        _preset_picker(prefix, preset)
        left, right = st.columns(2)
        temperature = left.slider(
            "Temperature (0 = greedy)", 0.0, 2.0, d.temperature, 0.05, key=f"{prefix}-temperature"
        )
        top_p = right.slider("Top-p", 0.05, 1.0, d.top_p, 0.01, key=f"{prefix}-top-p")
        top_k = left.number_input("Top-k (0 = off)", 0, 500, d.top_k, key=f"{prefix}-top-k")
        new_tokens = right.number_input("Max new tokens", 1, 2048, max_new_tokens, key=f"{prefix}-max-new-tokens")
        penalty = left.slider(
            "Repetition penalty", 0.5, 2.0, d.repetition_penalty, 0.05, key=f"{prefix}-repetition-penalty"
        )
        seed_value = right.number_input("Seed (-1 = random)", -1, 2**32 - 1, seed, key=f"{prefix}-seed")
    try:
        return GenerationSettings(
            temperature=temperature,
            top_p=top_p,
            top_k=int(top_k),
            max_new_tokens=int(new_tokens),
            repetition_penalty=penalty,
            seed=None if seed_value == -1 else int(seed_value),
        )
    except WorkbenchError as exc:
        show_error(exc)
        return None


MISSING = "—"  # what a table shows where there is no number (no battles between a pair, an interval not yet known)


def table(frame, *, digits: int = 3, places: dict[str, int] | None = None, **kwargs) -> None:
    """`st.dataframe` with missing values shown as a dash, not "None"; floats to `digits` places, or to
    `places[column]` for the columns named there."""
    styler = frame.style.format(precision=digits, na_rep=MISSING)
    for column, n in (places or {}).items():
        if column in frame.columns:
            styler = styler.format(precision=n, na_rep=MISSING, subset=[column])
    st.dataframe(styler, **kwargs)
