"""Wiring shared by the dashboard pages: settings, the store (opened once), the engine (loaded on first use), errors.

Not a page itself (dashboard.py lists the pages). The store is opened once per process with
`st.cache_resource` and the shipped prompt sets are loaded into it the first time; the `ChatEngine` is loaded
only when a page generates text, also once per process. Errors a user can fix (`WorkbenchError`) are shown
with `st.error` as their one sentence, escaped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import streamlit as st

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.ui.markup import plain_markdown

if TYPE_CHECKING:
    from workbench.generation.router import Router
    from workbench.store import Store


def show_error(exc: BaseException | str) -> None:
    """One sentence in a red box, with nothing in it interpreted as Markdown or HTML."""
    st.error(plain_markdown(str(exc)), icon=":material/error:")


def _listen_address() -> str:
    """Where this Streamlit server listens: its `server.address` option, all interfaces when unset."""
    return st.get_option("server.address") or "0.0.0.0"


def client() -> str:
    """The visitor's address (behind the Space's proxy when there is one), for per-visitor limits."""
    from workbench.access import client_address

    proxies = settings().trusted_proxies
    return client_address(st.context.ip_address, dict(st.context.headers), proxies)


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
def _open_store(url: str, admin_token: str | None, admin_open: bool) -> Store:
    from workbench.store import Store
    from workbench.studio.promptsets import load_shipped

    store = Store(url, admin_token=admin_token, admin_open=admin_open)
    load_shipped(store)
    return store


def store() -> Store:
    """The store named by the settings, opened once per process (the shipped prompt sets loaded into it)."""
    s = settings()
    try:
        return _open_store(s.db_url, s.admin_token, s.admin_without_token)
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
    registry.yaml ("remote:NAME"), each loaded on first use and kept for the process."""
    return _router(settings())


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a WorkbenchError raised inside the block as one sentence instead of a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        show_error(exc)


def session_id() -> str:
    """The anonymous voter id of this visitor: from their address as our proxy saw it, so a reload, a new tab or
    an edited URL cannot make a second voter (ballots count once per voter and pair)."""
    from workbench.access import voter_id

    return voter_id(client())


@st.cache_resource
def _vote_limit(config: Settings):
    from workbench.ui.limits import vote_limit

    return vote_limit(config)


def take_vote() -> None:
    """Count one vote against this visitor's hourly limit (not on the owner's own dashboard); raises
    WorkbenchError past it."""
    _vote_limit(settings()).take(session_id())


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
