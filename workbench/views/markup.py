"""Showing untrusted text (raters' reasons, model outputs, names, error sentences) inside Markdown, literally.

Streamlit's `st.markdown`/`st.error` and Gradio's `gr.Markdown` render Markdown (and Streamlit also LaTeX,
emoji shortcodes and colour directives): a reason like `![x](http://evil/pixel)` would load an image and
`<img onerror=...>` is HTML. `plain_markdown` backslash-escapes every character Markdown or those extensions
treat specially, so the text shows exactly as typed and nothing in it is interpreted.

    st.error(plain_markdown(str(exc)))
    st.markdown(f"**Reason:** {plain_markdown(reason)}")
"""

from __future__ import annotations

import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones with a meaning somewhere
# (Markdown, GFM tables and strikethrough, HTML, LaTeX `$`, Streamlit's `:emoji:` and `:red[...]` directives).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=\"'^])")


def plain_markdown(text: object) -> str:
    """`text` as Markdown that renders as the same literal text (line breaks kept, nothing interpreted)."""
    escaped = _SPECIAL.sub(r"\\\1", str(text))
    return escaped.replace("\r\n", "\n").replace("\n", "  \n")


VERDICT = {"left": "A is better", "right": "B is better", "tie": "a tie", "bothbad": "both are bad"}


# Generation settings in the words a receipt uses, in the order it names them.
SETTING_WORDS = (
    ("temperature", "temperature"),
    ("top_p", "top-p"),
    ("top_k", "top-k"),
    ("repetition_penalty", "repetition penalty"),
    ("adapter_strength", "adapter strength"),
    ("max_new_tokens", "max tokens"),
    ("seed", "seed"),
    ("stop", "stop"),
)
CONTEXT_SETTINGS = ("temperature", "top_p")  # always named, so a lone difference reads in context
# Settings the store leaves out at their neutral value, so older settings keep their hash (views sit below
# workbench.generation, so the value is stated here: GenerationSettings' default, 1 = the adapter as trained).
LEFT_OUT = {"adapter_strength": 1.0}


def _setting(key: str, value: object) -> str:
    if key == "stop":
        return ", ".join(repr(s) for s in value) if value else "none"
    if value is None:
        return "random"
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_difference(a: dict | None, b: dict | None) -> tuple[str, str]:
    """Two settings dicts in words, naming what differs between them (temperature and top-p always, for context):
    ("temperature 1.2 · top-p 0.95", "temperature 0.2 · top-p 0.95"). Empty strings when either is unknown."""
    if not a or not b:
        return "", ""
    a, b = ({**LEFT_OUT, **a}, {**LEFT_OUT, **b})
    keys = [k for k, _ in SETTING_WORDS if k in CONTEXT_SETTINGS or a.get(k) != b.get(k)]
    words = dict(SETTING_WORDS)
    return tuple(" · ".join(f"{words[k]} {_setting(k, side.get(k))}" for k in keys) for side in (a, b))


def vote_receipt(
    choice: str, left: str, right: str, left_settings: dict | None = None, right_settings: dict | None = None
) -> str:
    """What a rater reads after a blind vote: their verdict and what was hidden (escaped): the two checkpoints, or,
    when both answers came from one checkpoint, the generation settings that told them apart."""
    verdict = f"Recorded: {VERDICT[choice]}."
    a, b = settings_difference(left_settings, right_settings)
    same_settings = not a or left_settings == right_settings
    if left == right and not same_settings:
        return f"{verdict} Both answers came from **{plain_markdown(left)}**; A: {a}, B: {b}."
    if same_settings:
        return f"{verdict} A was **{plain_markdown(left)}**, B was **{plain_markdown(right)}**."
    return f"{verdict} A was **{plain_markdown(left)}** ({a}), B was **{plain_markdown(right)}** ({b})."
