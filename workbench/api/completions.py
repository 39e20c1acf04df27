"""`POST /v1/completions`: a prompt (text or token ids, or a list of either) continued as it is, no chat template.

With `echo` the prompt comes back before the reply; with `echo` and `logprobs` each prompt token comes back with
its log-probability given the tokens before it, and `max_tokens` may be 0 to score the prompt alone: what
lm-eval's `local-completions` asks for loglikelihood and multiple-choice tasks. llama.cpp's server computes no
log-probabilities of the prompt (llama.cpp issues #8942 and #27174; PR #15189 is open), so the prompt is scored by
one teacher-forced forward pass of the checkpoint's transformers reference (`tokenprobs.prompt_logprobs`, what
perplexity and the token view use), loaded on first use; generated tokens' log-probabilities come from llama.cpp.
Log-probabilities use OpenAI's older shape: tokens, token_logprobs, top_logprobs, text_offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workbench.api.errors import ApiError
from workbench.api.models import resolve
from workbench.api.params import MAX_PROMPTS
from workbench.api.state import FINISH, ApiState, Asker, envelope, generation, seeded, usage
from workbench.api.streams import admit, collect_all, fits, started, stream_reply
from workbench.errors import WorkbenchError
from workbench.generation.backends.base import Extras
from workbench.generation.streaming import Reply

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for completions


def prompt_list(prompt: Any) -> list[str | list[int]]:
    """The prompts of a request: text, token ids, or a list of either (lm-eval sends batches of token ids)."""
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(_is_id(i) for i in prompt)):
        return [prompt]
    listed = isinstance(prompt, list) and 0 < len(prompt) <= MAX_PROMPTS
    if listed and all(isinstance(p, str) or (isinstance(p, list) and p and all(_is_id(i) for i in p)) for p in prompt):
        return list(prompt)
    raise ApiError(
        400,
        f"prompt must be text, a list of token ids, or a list of up to {MAX_PROMPTS} of either.",
        param="prompt",
        code="invalid_value",
    )


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def legacy_logprobs(prompt_rows: list[dict], entries: list[dict]) -> dict[str, list]:
    """Prompt rows (`prompt_logprobs`) and generated entries (llama.cpp's) in the completions API's shape."""
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    offset = 0
    rows = [(r["token"], r["logprob"], None if r["logprob"] is None else dict(r["top"])) for r in prompt_rows]
    rows += [(e["token"], e["logprob"], {a["token"]: a["logprob"] for a in e["top_logprobs"]}) for e in entries]
    for token, logprob, top in rows:
        out["tokens"].append(token)
        out["token_logprobs"].append(logprob)
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(token)
    return out


async def completions(state: ApiState, asker: Asker, params: dict[str, Any], request: Request) -> Response:
    prompts = prompt_list(params["prompt"])
    checkpoint = resolve(state.settings, params["model"], asker.may_choose)
    n, stream, echo, k = (
        params.get("n", 1),
        params.get("stream", False),
        params.get("echo", False),
        params.get("logprobs"),
    )
    max_tokens = params.get("max_tokens", DEFAULT_MAX_TOKENS)
    if stream and (n > 1 or len(prompts) > 1):
        raise ApiError(400, "A streamed request has one prompt and one choice.", param="stream")
    if stream and echo and k is not None:
        raise ApiError(
            400, "The prompt's log-probabilities (echo with logprobs) are not streamed: drop stream.", param="stream"
        )
    settings = generation(params, max(max_tokens, 1))
    keep = state.keep(asker, request.headers)
    router, model = state.router_for(asker), params["model"]

    def tokenized() -> list[tuple[list[int], str]]:
        engine, _ = router.route(checkpoint)
        out = []
        for prompt in prompts:
            ids = engine.check_ids(engine.tokenize(prompt) if isinstance(prompt, str) else prompt, max_tokens)
            out.append((ids, prompt if isinstance(prompt, str) else engine.detokenize(ids)))
        return out

    fits(
        asker, [[{"role": "user", "content": p}] for p in prompts if isinstance(p, str)], settings
    )  # before tokenizing
    try:
        encoded = await run_in_threadpool(tokenized) if state.ready() else []
    except WorkbenchError as exc:
        raise ApiError(400, str(exc), param="prompt") from None
    admit(state, asker, [[{"role": "user", "content": text}] for _, text in encoded], settings, len(prompts) * n)

    def start(ids: list[int], j: int) -> Callable[[], Reply]:
        return lambda: router.complete(ids, seeded(settings, j), checkpoint, extras=Extras(logprobs=k))

    async def scored() -> list[list[dict]]:
        from workbench.generation.tokenprobs import prompt_logprobs

        try:
            strength = settings.adapter_strength  # the echoed prompt is scored as the reply is made
            return await run_in_threadpool(
                lambda: [prompt_logprobs(router, i, checkpoint, k or 0, strength) for i, _ in encoded]
            )
        except WorkbenchError as exc:
            raise ApiError.from_workbench(exc) from None

    def stored_for(prompt: str) -> Any:
        def stored(text: str, stats: Any) -> int | None:
            meta = {"endpoint": "completions", **({"user": params["user"]} if "user" in params else {})}
            return state.store_generation(checkpoint, prompt, text, stats, meta) if keep else None

        return stored

    ident = f"cmpl-{uuid.uuid4().hex}"

    def chunk(text: str | None, finish: str | None, entries: list[dict]) -> dict[str, Any]:
        logprobs = legacy_logprobs([], entries) if k is not None else None
        choice = {"index": 0, "text": text or "", "logprobs": logprobs, "finish_reason": finish}
        return {**envelope("text_completion", model, ident), "choices": [choice]}

    release = state.hold(asker, len(prompts) * n)
    try:
        rows = await scored() if echo and k is not None else [[] for _ in encoded]
        replies = await started([start(ids, j) for ids, _ in encoded for j in range(n)]) if max_tokens > 0 else []
        if stream and replies:
            include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
            opening = encoded[0][1] if echo else ""
            stored = stored_for(encoded[0][1])
            response = stream_reply(state, replies[0], chunk, include_usage, stored, release, opening=opening)
            release = None
            return response
        results = await collect_all(replies, request)
    finally:
        if release is not None:
            release()
    choices, completion_tokens, ids_stored = [], 0, []
    for i in range(len(encoded) * n):
        _, text = encoded[i // n]
        reply, (new, stats) = (replies[i], results[i]) if replies else (None, ("", None))
        completion_tokens += stats.new_tokens if stats else 0
        if stats is not None and (stored_id := await run_in_threadpool(stored_for(text), new, stats)) is not None:
            ids_stored.append(stored_id)
        entries = reply.logprobs if reply is not None else []
        choices.append(
            {
                "index": i,
                "text": (text if echo else "") + new,
                "logprobs": legacy_logprobs(rows[i // n] if echo else [], entries) if k is not None else None,
                "finish_reason": FINISH[stats.finish_reason] if stats else "length",
            }
        )
    body = {
        **envelope("text_completion", model, ident),
        "choices": choices,
        "usage": usage(sum(len(ids) for ids, _ in encoded), completion_tokens),
        "workbench": {"checkpoint": checkpoint, "generation_ids": ids_stored},
    }
    return JSONResponse(body)
