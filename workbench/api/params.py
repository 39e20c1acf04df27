"""The parameters each endpoint accepts, declared once with their types and bounds, and the one check over them.

    params = parse(body, "chat")       # a dict of the given parameters, checked; ApiError (400) naming the first
                                       # unknown, mistyped or out-of-range parameter, in one sentence

A parameter left out or sent as null is not given (OpenAI's clients send null for "unset"). A parameter of
OpenAI's API that Workbench does not implement is not declared, so it is refused rather than silently ignored
(the sentence says why for tool calling, `NOT_TAKEN`, and otherwise names the accepted parameter it resembles);
`presence_penalty` and `frequency_penalty` are declared with the one value that changes nothing (0), which
clients such as promptfoo send by default. `top_k`, `min_p` and `repetition_penalty` are Workbench's own
sampling settings (vLLM takes the same names as extra fields); `adapter_strength` scales an adapter model id's LoRA
(a base model id has none, and answers as it does at any strength, as the chat does). docs/reference.md prints
this table (`reference_rows`, through `workbench docs`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.api.errors import ApiError
from workbench.generation.settings import MAX_SEED, MAX_STRENGTH

MAX_N = 8  # choices per request (each is one more reply on the slots)
MAX_PROMPTS = 32  # prompts in one completions request (lm-eval batches send several)
MAX_TOP_LOGPROBS = 20  # OpenAI's own bound
MAX_STOP = 16
_NONE = object()
# Parameters of OpenAI's API that Workbench deliberately does not take, with why (the end of the refusal's
# sentence). Chat UIs send tools unasked: Open WebUI's native function calling offers its built-in tools with
# every message, and its "Legacy" function calling sends none.
NOT_TAKEN = dict.fromkeys(
    ("tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"),
    "Workbench's models do not call tools, so send the request without them",
)


@dataclass(frozen=True)
class Param:
    """One accepted parameter.

    Attributes:
        kind: "string", "number", "integer", "boolean", "stop" (a string or a list of strings), "object",
            "messages" or "prompt" (their shape is checked by the endpoint).
        low, high: Inclusive bounds of a number; `above` makes `low` exclusive.
        only: The one value accepted (a neutral setting Workbench does not implement otherwise).
        required: Whether a request must give it.
        help: What it does, for the reference.
    """

    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    above: bool = False
    only: Any = _NONE
    required: bool = False


COMMON = {
    "model": Param("string", "a model id from GET /v1/models", required=True),
    "temperature": Param("number", "sampling temperature; 0 is greedy (default 1)", 0, 2),
    "top_p": Param("number", "nucleus mass (default 1: off)", 0, 1, above=True),
    "stop": Param("stop", f"a string or up to {MAX_STOP} strings that end the reply (not included)"),
    "seed": Param("integer", "sampling seed: the same seed, settings and prompt give the same reply", 0, MAX_SEED),
    "stream": Param("boolean", "send the reply as server-sent events as it is made, ending with data: [DONE]"),
    "stream_options": Param("object", "{include_usage: true} adds a last chunk with the token counts"),
    "n": Param("integer", f"replies per prompt, at most {MAX_N} (each takes a slot)", 1, MAX_N),
    "user": Param("string", "who the request is for; kept with a stored generation"),
    "presence_penalty": Param("number", "only 0 (Workbench has repetition_penalty instead)", only=0),
    "frequency_penalty": Param("number", "only 0 (Workbench has repetition_penalty instead)", only=0),
    "top_k": Param("integer", "Workbench: keep the k most likely tokens (default 0: off)", 0, 100_000),
    "min_p": Param(
        "number", "Workbench: drop tokens below this share of the top one's probability (default 0)", 0, 0.99
    ),
    "repetition_penalty": Param("number", "Workbench: above 1 discourages repeats (default 1: off)", 0, 10, above=True),
    "adapter_strength": Param(
        "number",
        "Workbench: the adapter's LoRA scale times this (default 1: as trained; 0: the base model; a base model "
        "id ignores it)",
        0,
        MAX_STRENGTH,
    ),
}
ENDPOINTS: dict[str, dict[str, Param]] = {
    "chat": {
        **COMMON,
        "messages": Param("messages", "the conversation: system, user and assistant messages", required=True),
        "max_tokens": Param("integer", "most tokens to generate", 1, 1_000_000),
        "max_completion_tokens": Param("integer", "most tokens to generate (the newer name)", 1, 1_000_000),
        "logprobs": Param("boolean", "each reply token's log-probability"),
        "top_logprobs": Param("integer", "and this many most likely tokens at each position", 0, MAX_TOP_LOGPROBS),
        "response_format": Param("object", "{type: text | json_object | json_schema, json_schema: {schema}}"),
    },
    "completions": {
        **COMMON,
        "prompt": Param("prompt", f"text, token ids, or a list of up to {MAX_PROMPTS} of either", required=True),
        "max_tokens": Param(
            "integer", "most tokens to generate; 0 with echo scores the prompt (default 16)", 0, 1_000_000
        ),
        "echo": Param("boolean", "return the prompt before the reply (with logprobs: the prompt's own)"),
        "logprobs": Param("integer", "log-probabilities of each token and this many most likely", 0, MAX_TOP_LOGPROBS),
        "best_of": Param("integer", "only 1", only=1),
    },
}


def _number(name: str, value: Any, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a whole number" if integer else "a number"
        raise ApiError(400, f"{name} must be {kind}, not {_shown(value)}.", param=name, code="invalid_type")
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number.", param=name, code="invalid_value")
    if integer:
        if value != int(value):
            raise ApiError(400, f"{name} must be a whole number, not {value!r}.", param=name, code="invalid_type")
        return int(value)
    return float(value)


def _shown(value: Any) -> str:
    """A value's kind in a sentence (never the value itself, which may be huge)."""
    return {str: "text", list: "a list", dict: "an object", bool: "true or false"}.get(type(value), "null")


def check(name: str, spec: Param, value: Any) -> Any:
    """One parameter's value, checked (see `Param`); raises ApiError naming it."""
    if spec.kind in ("number", "integer"):
        value = _number(name, value, spec.kind == "integer")
        if spec.only is not _NONE and value != spec.only:
            raise ApiError(400, f"{name} may only be {spec.only} here.", param=name, code="unsupported_value")
        too_low = spec.low is not None and (value <= spec.low if spec.above else value < spec.low)
        if too_low or (spec.high is not None and value > spec.high):
            low = f"above {spec.low:g}" if spec.above else f"from {spec.low:g}"
            raise ApiError(
                400, f"{name} must be {low} to {spec.high:g}, not {value:g}.", param=name, code="invalid_value"
            )
        return value
    expected = {"string": str, "boolean": bool, "object": Mapping}.get(spec.kind)
    if expected is not None and not isinstance(value, expected):
        kind = {"string": "text", "boolean": "true or false", "object": "an object"}[spec.kind]
        raise ApiError(400, f"{name} must be {kind}, not {_shown(value)}.", param=name, code="invalid_type")
    if spec.kind == "string" and len(value) > 1000:
        raise ApiError(400, f"{name} is longer than 1,000 characters.", param=name, code="invalid_value")
    if spec.kind == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise ApiError(400, f"{name} must be a string or a list of strings.", param=name, code="invalid_type")
        if len(stops) > MAX_STOP:
            raise ApiError(400, f"{name} may hold at most {MAX_STOP} strings.", param=name, code="invalid_value")
        return tuple(stops)
    return value


def parse(body: Any, endpoint: str) -> dict[str, Any]:
    """The request's parameters for `endpoint` ("chat" or "completions"), each checked; not-given ones left out."""
    if not isinstance(body, Mapping):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    accepted = ENDPOINTS[endpoint]
    params: dict[str, Any] = {}
    for name, value in body.items():
        spec = accepted.get(name)
        if spec is None:
            raise _unknown(name, accepted)
        if value is not None:
            params[name] = check(name, spec, value)
    for name, spec in accepted.items():
        if spec.required and name not in params:
            raise ApiError(400, f"{name} is required.", param=name, code="missing_required_parameter")
    return params


def _unknown(name: Any, accepted: Mapping[str, Param]) -> ApiError:
    """The refusal of a parameter the endpoint does not declare: why, where Workbench refuses it on purpose
    (`NOT_TAKEN`), else the accepted name it is closest to, if any (another server's name for a setting, such as
    llama.cpp's and Ollama's `repeat_penalty`, or a typo)."""
    shown = name if isinstance(name, str) and len(name) <= 64 else "(a long name)"
    why = NOT_TAKEN.get(shown)
    if why is None:
        close = difflib.get_close_matches(shown, accepted, n=1, cutoff=0.75)
        why = f"Workbench does not take it (did you mean {close[0]!r}?)" if close else "Workbench does not take it"
    return ApiError(400, f"Unknown parameter {shown!r}: {why}.", param=shown, code="unknown_parameter")


def _accepts(spec: Param) -> str:
    if spec.only is not _NONE:
        return f"{spec.kind} {spec.only}"
    if spec.low is None:
        return spec.kind

    def shown(x: float) -> str:
        return f"{int(x):,}" if x == int(x) else f"{x:g}"

    low = f"> {shown(spec.low)}" if spec.above else f">= {shown(spec.low)}"
    return f"{spec.kind}, {low}, <= {shown(spec.high or 0)}"


def reference_rows() -> list[dict[str, str]]:
    """Every parameter as {parameter, endpoints, accepts, meaning}, for docs/reference.md (`workbench docs`)."""
    rows: dict[str, dict[str, str]] = {}
    for endpoint, accepted in ENDPOINTS.items():
        for name, spec in accepted.items():
            row = rows.setdefault(name, {"parameter": name, "endpoints": endpoint, "accepts": "", "meaning": ""})
            if row["endpoints"] != endpoint:
                row["endpoints"] += f", {endpoint}"
            for key, text in (("accepts", _accepts(spec)), ("meaning", spec.help)):
                if not row[key]:
                    row[key] = text
                elif row[key] != text:
                    row[key] += f"; completions: {text}"
    return list(rows.values())
