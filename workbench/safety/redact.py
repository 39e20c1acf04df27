"""Secrets kept out of what is written or shown: database passwords, API keys and tokens, and server paths.

    redact("postgresql://wb:hunter2@db/wb")        # "postgresql://wb:***@db/wb"
    redact_value({"error": "...", "api_key": "sk-..."})   # every string inside, and secret-named keys, redacted
    hide_paths("/srv/app/models/adapters/run/x failed", [Path("/srv/app")])   # "…/models/adapters/run/x failed"
    hide_urls("http://10.0.0.5:8000/v1 refused")    # "a remote server refused": no host of ours on a page

What counts as a secret: the password part of any URL (`scheme://user:PASSWORD@host`), values after
password=, api_key=, token=, secret= and the like, `Bearer` credentials, the shapes of common keys (sk-...,
hf_..., ghp_...), and the value of every environment variable whose name says it holds one (…KEY, …TOKEN,
…SECRET, …PASSWORD, WORKBENCH_DB_URL's password), wherever it appears. Run files (the run log, workbench.json,
job.json) pass through `redact_value` when written; job output is redacted when read. Torch-free.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

MASK = "***"
SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw(or)?d|credential)")
# Every repetition that can start at many places is bounded (a scheme is at most 32 characters, a user name or a
# password at most 256, a key at most 256), so each pattern does a bounded amount of work per position of the text:
# linear time on any input. Unbounded, `a.a.a.…` made the URL patterns quadratic (0.75 s on 32 kB, minutes on a
# request body), holding the GIL while every other request waited.
_SCHEME = r"\b[a-zA-Z][a-zA-Z0-9+.-]{0,31}://"
_URL_PASSWORD = re.compile(rf"(?P<head>{_SCHEME}[^:/@\s]{{0,256}}):(?P<pw>[^@/\s]{{1,256}})@")
_ASSIGNED = re.compile(
    r"(?i)(?P<head>\b(?:password|passwd|pwd|api[_-]?key|access[_-]?key|secret|token)\b\s*[=:]\s*['\"]?)"
    r"(?P<value>[^\s'\",;&)]+)"
)
_BEARER = re.compile(r"(?i)\b(?P<head>bearer\s+)[A-Za-z0-9._~+/-]+=*")
_KEY_SHAPES = re.compile(r"\b(?:sk-[A-Za-z0-9_-]{16,256}|hf_[A-Za-z0-9]{20,256}|gh[pousr]_[A-Za-z0-9]{20,256})")
_URL = re.compile(rf"{_SCHEME}[^\s'\"<>]+")
_ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:[\w.+@-]+/)*[\w.+@-]+")


def known_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret values in the environment: variables named like a key, token, secret or password, and the password
    of any URL-valued variable (WORKBENCH_DB_URL). Short values (under 6 characters) are left out: masking every
    "abc" in a log would hide more than it protects."""
    environ = os.environ if environ is None else environ
    found = []
    for name, value in environ.items():
        if SECRET_NAME.search(name) and len(value) >= 6:
            found.append(value)
        match = _URL_PASSWORD.search(value) if "://" in value else None
        if match and len(match["pw"]) >= 3:
            found.append(match["pw"])
    return sorted(set(found), key=len, reverse=True)  # longest first, so no secret is half-masked by another


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every secret masked (see the module docstring); `secrets` defaults to `known_secrets()`."""
    if not isinstance(text, str) or not text:
        return text
    for secret in known_secrets() if secrets is None else secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _ASSIGNED.sub(lambda m: m["head"] + MASK, text)
    text = _BEARER.sub(lambda m: m["head"] + MASK, text)
    return _KEY_SHAPES.sub(MASK, text)


def redact_value(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A JSON-like value with every string redacted, and the whole value of a secret-named key masked."""
    secrets = known_secrets() if secrets is None else list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and _secret_key(k) and v else redact_value(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value


def _secret_key(key: str) -> bool:
    # "api_key", "token", "db_password": yes; "eos_token_id", "max_tokens", "tokens_per_s", "key_env": no.
    return bool(re.fullmatch(r"(?i)(\w*_)?(api_?key|token|secret|passw(or)?d|credentials?)", key))


def hide_paths(text: str, roots: Iterable[Path] = ()) -> str:
    """`text` without absolute server paths: a path under one of `roots` becomes relative to it ("…/models/x"),
    any other keeps only its last part ("…/x")."""
    if not isinstance(text, str) or "/" not in text:
        return text
    bases = sorted((str(Path(r)).rstrip("/") for r in roots), key=len, reverse=True)

    def short(match: re.Match) -> str:
        path = match.group(0)
        for base in bases:
            if path == base:
                return "…"
            if path.startswith(base + "/"):
                return "…/" + path[len(base) + 1 :]
        return "…/" + path.rsplit("/", 1)[-1]

    return _ABSOLUTE.sub(short, text)


def hide_urls(text: str) -> str:
    """`text` with every URL replaced by "a remote server": a remote model's host (an internal address, a paid
    API's endpoint) is the operator's to know, not a visitor's."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URL.sub("a remote server", text)
