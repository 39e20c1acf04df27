"""The OpenAI-compatible backend: a remote model (OpenAI, vLLM, TGI, llama.cpp's server, Ollama) through the
official `openai` client, behind the same ChatEngine contract as the local backends.

The server applies its own chat template, so the engine hands over the messages (no local tokenizer, no
trimming: a conversation that does not fit gets the server's refusal as one sentence). Settings map to the
chat API (temperature, top_p, max_tokens, seed). Stop strings are applied by the Reply as on every backend:
it closes the stream as soon as one appears, as cancel does, and closing the stream ends the server's work.
Top-k and the repetition penalty go only to servers whose registry entry says they take them
(`workbench.remote`); otherwise the reply records them as not applied. Usage (the server's token counts) and
time to first token go into the stats; the server URL (never the key), the model name, the settings sent
and the usage go into `ReplyStats.details`, which the store keeps with the generation.

Faults: 429, 5xx, 408/409 and timeouts are retried by the client itself, with exponential backoff and jitter
and honouring Retry-After (`WORKBENCH_REMOTE_RETRIES` times, each attempt given `WORKBENCH_REMOTE_TIMEOUT`
seconds); what still fails, and 401 (key), 404 (model) and 400 (too long), becomes one sentence that says
what to do.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.backends.base import Job
from workbench.generation.settings import GenerationSettings, Message
from workbench.generation.streaming import Reply, finish_reason
from workbench.registry import BaseModel
from workbench.remote import RemoteModel

MAX_TOP_LOGPROBS = 20  # the most alternatives per token the OpenAI API returns


def _client(remote: RemoteModel, settings: Settings) -> Any:
    try:
        from openai import OpenAI
    except ImportError:
        raise WorkbenchError("Remote models need the openai package: run `pip install openai`.") from None
    return OpenAI(
        base_url=remote.base_url,
        api_key=remote.api_key() or "none",  # servers without keys still want the header
        max_retries=settings.remote_retries,
        timeout=settings.remote_timeout,
    )


def explain(exc: Exception, name: str, remote: RemoteModel, settings: Settings) -> WorkbenchError:
    """One sentence, saying what to do, for a failed request (never the key, never a traceback)."""
    import openai

    where = remote.base_url
    tries = f"after {settings.remote_retries} retr{'y' if settings.remote_retries == 1 else 'ies'}"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        key = f"the key in {remote.api_key_env}" if remote.api_key_env else "requests without a key"
        return WorkbenchError(f"{where} refused {key} (HTTP {exc.status_code}): check the API key for {name}.")
    if isinstance(exc, openai.NotFoundError):
        return WorkbenchError(
            f"{where} has no model {remote.model!r} (or the adapter asked for): "
            f"`python -m workbench models` lists what it serves; fix {name}'s entry in registry.yaml."
        )
    if isinstance(exc, openai.RateLimitError):
        return WorkbenchError(f"{name} is rate-limited by {where} (HTTP 429) {tries}: wait a minute and try again.")
    if isinstance(exc, openai.BadRequestError):
        message = _server_message(exc)
        if any(word in message.lower() for word in ("context", "too long", "maximum", "exceed")):
            return WorkbenchError(
                f"The conversation is too long for {name}: shorten it or lower max new tokens ({message})."
            )
        return WorkbenchError(f"{where} refused the request for {name}: {message}")
    if isinstance(exc, openai.APITimeoutError):
        return WorkbenchError(
            f"{name} did not answer within {settings.remote_timeout:g} s {tries}: the server at {where} is "
            "slow or overloaded; try again, or raise WORKBENCH_REMOTE_TIMEOUT."
        )
    if isinstance(exc, openai.APIConnectionError):
        return WorkbenchError(f"Cannot reach {where} for {name} {tries}: is the server running and the URL right?")
    if isinstance(exc, openai.InternalServerError | openai.APIStatusError):
        status = getattr(exc, "status_code", "error")
        return WorkbenchError(f"{where} failed (HTTP {status}) for {name} {tries}: the server's own error; try later.")
    if isinstance(exc, WorkbenchError):
        return exc
    return WorkbenchError(f"The request to {where} for {name} failed: {type(exc).__name__}.")


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"]).splitlines()[0][:300]
        if isinstance(body.get("message"), str):
            return body["message"].splitlines()[0][:300]
    return str(getattr(exc, "message", "") or exc).splitlines()[0][:300]


class OpenAIBackend:
    """Generates with a remote OpenAI-compatible server; the engine sends messages, not token ids."""

    name = "openai"
    tokenizer = None  # the server tokenizes and applies its chat template
    context_window = 0  # unknown here: the server refuses what does not fit

    def __init__(self, base: BaseModel, settings: Settings) -> None:
        assert base.remote is not None
        self.base = base
        self.settings = settings
        self.remote: RemoteModel = base.remote
        self.slots = settings.slots
        self.token_lock = threading.Lock()
        self.client = _client(self.remote, settings)

    @classmethod
    def load(cls, base: BaseModel, settings: Settings) -> OpenAIBackend:
        """A client for the remote model `base` (nothing is sent until a request)."""
        if base.kind != "remote" or base.remote is None:
            raise WorkbenchError(f"{base.name!r} is not a remote model; the openai backend serves remote models.")
        return cls(base, settings)

    def close(self) -> None:
        self.client.close()

    # --- what is sent --------------------------------------------------------------------------------------

    def request(self, messages: Sequence[Message], settings: GenerationSettings, seed: int, adapter: str | None):
        """(keyword arguments for chat.completions.create, settings that this server does not take)."""
        kwargs: dict[str, Any] = {
            "model": self.remote.server_model(adapter),
            "messages": list(messages),
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "seed": seed,
        }
        if not settings.greedy:
            kwargs["top_p"] = settings.top_p
        # Stop strings stay here: the Reply sees them and closes the stream. A server that stopped on one
        # would say only "stop", the same as at the end of its turn, and the reply could not tell which.
        taken = dict(self.remote.sampling)
        extra, not_applied = {}, []
        # (an adapter strength other than 1 that the server does not take was refused by the engine already)
        for ours, default in (("top_k", 0), ("min_p", 0.0), ("repetition_penalty", 1.0), ("adapter_strength", 1.0)):
            value = getattr(settings, ours)
            if ours in taken:
                extra[taken[ours]] = value
            elif value != default and not (ours == "top_k" and settings.greedy):
                not_applied.append(ours)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs, not_applied

    # --- generation ----------------------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        threading.Thread(target=self._generate, args=(job,), daemon=True, name="workbench-remote").start()

    def run_many(self, jobs: Sequence[Job]) -> None:
        """Every job at once, up to one per slot: the server batches them (vLLM, TGI, llama.cpp) or queues them."""
        with ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="workbench-remote") as pool:
            list(pool.map(self._generate, jobs))

    def _generate(self, job: Job) -> None:
        reply: Reply = job.reply
        adapter = job.adapter.name if job.adapter else None
        kwargs, not_applied = self.request(job.messages, job.settings, job.seed, adapter)
        usage: dict[str, Any] = {}
        finish, error = None, None
        try:
            reply.begin()
            if not reply.cancelled.is_set():
                stream = self.client.chat.completions.create(
                    stream=True, stream_options={"include_usage": True}, **kwargs
                )
                with stream:
                    for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage.model_dump(exclude_none=True)
                        if not chunk.choices:
                            continue
                        choice = chunk.choices[0]
                        finish = choice.finish_reason or finish
                        text = choice.delta.content if choice.delta else None
                        if text:
                            reply.count_tokens(1)
                            if reply.push(text):
                                break  # a stop string or cancel: closing the stream stops the server's work
        except Exception as exc:  # reported to the consumer by Reply.__iter__
            error = explain(exc, self.base.name, self.remote, self.settings)
        finally:
            new_tokens = int(usage.get("completion_tokens") or reply.tokens_streamed)
            reply.stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            reply.stats.details = {
                "server": self.remote.base_url,
                "server_model": kwargs["model"],
                "sent": {k: v for k, v in kwargs.items() if k != "messages"},
                "usage": usage,
                "not_applied": not_applied,
            }
            ended = finish == "stop"  # the server's end of turn
            reply.finish_stats(new_tokens, finish_reason(reply, new_tokens, job.settings.max_new_tokens, ended))
            reply.close(error)

    # --- token probabilities -------------------------------------------------------------------------------

    def next_token_probabilities(
        self, messages: Sequence[Message], adapter: str | None, k: int, temperature: float
    ) -> list[tuple[int, str, float]]:
        """The k most likely first tokens from the server's top log-probabilities (at most 20), renormalised
        over those k at `temperature`. Token ids are unknown remotely and given as -1."""
        if not self.remote.logprobs:
            raise WorkbenchError(
                f"{self.base.name}'s server does not return log-probabilities (logprobs: false in registry.yaml), "
                "so token probabilities are not available for it."
            )
        k = min(k, MAX_TOP_LOGPROBS)
        kwargs, _ = self.request(messages, GenerationSettings(temperature=0, max_new_tokens=1), 0, adapter)
        started = time.perf_counter()
        try:
            out = self.client.chat.completions.create(logprobs=True, top_logprobs=k, **kwargs)
            content = out.choices[0].logprobs.content if out.choices and out.choices[0].logprobs else None
        except Exception as exc:
            raise explain(exc, self.base.name, self.remote, self.settings) from None
        if not content:
            raise WorkbenchError(
                f"{self.remote.base_url} returned no log-probabilities after {time.perf_counter() - started:.1f} s; "
                f"set logprobs: false for {self.base.name} in registry.yaml."
            )
        top = [(t.token, t.logprob) for t in content[0].top_logprobs]
        weights = [math.exp(lp / temperature) for _, lp in top]
        total = sum(weights) or 1.0
        return [(-1, token, w / total) for (token, _), w in zip(top, weights, strict=True)]

    def status(self) -> dict[str, Any]:
        """Whether the server answers, and the models it lists (or the sentence saying why not)."""
        try:
            models = sorted(m.id for m in self.client.with_options(max_retries=0, timeout=10).models.list())
        except Exception as exc:
            return {"reachable": False, "error": str(explain(exc, self.base.name, self.remote, self.settings))}
        return {"reachable": True, "models": models}
