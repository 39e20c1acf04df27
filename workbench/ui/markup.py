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


def vote_receipt(choice: str, left: str, right: str) -> str:
    """What a rater reads after a blind vote: their verdict and the names that were hidden (escaped)."""
    return f"Recorded: {VERDICT[choice]}. A was **{plain_markdown(left)}**, B was **{plain_markdown(right)}**."
