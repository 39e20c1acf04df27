"""The one funnel every error passes before a visitor or a dashboard user reads it.

    public_sentence(exc)                     # "The message is 9,000 characters; the limit here is 8,000."
    public_sentence(remote_error, roots)     # secrets masked, "a remote server" for URLs, "…/x" for server paths

What it does, in this order: looks at no more than `WINDOW` characters of the text (a remote server's 600 kB error
body or a dataset line quoted into an error costs the same as a short one), masks secrets
(`workbench.safety.redact`, linear time), replaces URLs (a remote model's host is the operator's to know) and
shortens absolute server paths, folds it onto one line and cuts it to `SENTENCE_CHARS`. The output is plain text:
each UI escapes it for where it is shown (HTML in Gradio, Markdown in Streamlit).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SENTENCE_CHARS = 300  # an error longer than this (a backend's message) is cut: one sentence, not a dump
# Characters read from an error's text. Larger than SENTENCE_CHARS so that a secret straddling the cut is still
# recognised whole and masked before the cut (a key's prefix alone would not match a key's shape).
WINDOW = 4_000


def public_sentence(error: BaseException | str | None, roots: Iterable[Path] = ()) -> str:
    """What a person is shown of `error`: one line of at most SENTENCE_CHARS characters, secrets masked, URLs and
    server paths hidden (paths under `roots` kept relative to them). Linear in WINDOW whatever the error holds."""
    from workbench.safety.redact import hide_paths, hide_urls, redact

    text = "" if error is None else str(error)
    text = text[:WINDOW]
    text = " ".join(hide_paths(hide_urls(redact(text)), roots).split())
    return text if len(text) <= SENTENCE_CHARS else text[: SENTENCE_CHARS - 1].rstrip() + "…"
