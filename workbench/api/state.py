"""What the API's endpoints share: the Router, who is asking (`Asker`), requests held per visitor, the store, and
the conversions between OpenAI's parameters and Workbench's settings.

    state = ApiState(settings, router, ready=lambda: True)
    release = state.hold(asker, 2)          # a visitor's replies in flight count against WORKBENCH_VISITOR_REQUESTS
    state.keep(asker, headers)              # whether to store this request's generations
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workbench.api.errors import ApiError
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router
from workbench.generation.settings import GenerationSettings, Message

STORE_HEADER = "x-workbench-store"
FINISH = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "stop"}  # ours -> OpenAI's
STREAM_EVERY_S = 0.05  # a stream sends what was generated meanwhile this often (not a wake-up per token)


@dataclass(frozen=True)
class Asker:
    """Who sent a request, as the endpoints need it (made by `workbench.api.routes._who`).

    Attributes:
        address: The key their limits count under.
        owner: The owner's rights (this machine, or a valid key): any checkpoint, owner sizes, no rate limit.
        body_cap: The largest request body they may send, in bytes.
        may_choose: Whether they may use a checkpoint.
        check: Raises WorkbenchError when a conversation or settings are larger than their sizes allow.
        take: Counts n replies against their rate limit; raises WorkbenchError past it.
        max_new_tokens: The most tokens one of their replies may have.
    """

    address: str
    owner: bool
    body_cap: int
    may_choose: Callable[[str], bool]
    check: Callable[[list[Message], GenerationSettings], None]
    take: Callable[[int], None]
    max_new_tokens: int


class ApiState:
    """The endpoints' shared state. `ready()` says whether the main model is loaded (503 until it is)."""

    def __init__(self, settings: Settings, router: Router, ready: Callable[[], bool]):
        self.settings = settings
        self.router = router
        self.ready = ready
        self._visitors = router.for_visitors()
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._store: Any = None

    def router_for(self, asker: Asker) -> Router:
        """The router a request goes through (a visitor's never makes llama.cpp drop a loaded adapter)."""
        return self.router if asker.owner else self._visitors

    def check_ready(self) -> None:
        if not self.ready():
            raise ApiError(503, "The model is loading: try again in a few seconds.", code="model_loading")

    def hold(self, asker: Asker, n: int) -> Callable[[], None]:
        """Count `n` replies in flight for a visitor until the returned release is called (once; later calls do
        nothing); 429 past their share (WORKBENCH_VISITOR_REQUESTS). The owner is not counted."""
        if asker.owner:
            return lambda: None
        with self._lock:
            mine = self._held.get(asker.address, 0)
            if mine + n > self.settings.visitor_requests:
                raise ApiError(
                    429,
                    f"You have {mine} replies running and may have {self.settings.visitor_requests} at once here: "
                    "wait for them to finish.",
                    code="too_many_requests",
                )
            self._held[asker.address] = mine + n
        done = threading.Event()

        def release() -> None:
            with self._lock:
                if done.is_set():
                    return
                done.set()
                left = self._held.get(asker.address, n) - n
                if left > 0:
                    self._held[asker.address] = left
                else:
                    self._held.pop(asker.address, None)

        return release

    def held(self) -> int:
        """Visitors' replies in flight now (what a test checks is back to 0)."""
        with self._lock:
            return sum(self._held.values())

    def keep(self, asker: Asker, headers: Mapping[str, str]) -> bool:
        """Whether this request's generations go to the store: the owner's, with WORKBENCH_API_STORE=1 or the
        header X-Workbench-Store: 1 (0 turns it off); a visitor asking is refused (the store feeds the Arena)."""
        asked = (headers.get(STORE_HEADER) or "").strip().lower()
        if asked and not asker.owner:
            raise ApiError(
                403, "Keeping API generations in the store is for the owner of this server.", code="forbidden"
            )
        if asked not in ("", "0", "1", "true", "false"):
            raise ApiError(400, "X-Workbench-Store must be 1 or 0.", param="X-Workbench-Store", code="invalid_value")
        return asked in ("1", "true") or (asked == "" and asker.owner and self.settings.api_store)

    def store_generation(self, checkpoint: str, prompt: Any, text: str, stats: Any, meta: dict[str, Any]) -> int:
        """Store one reply with its checkpoint, settings and stats; its generation id."""
        from workbench.store import Store

        with self._lock:
            if self._store is None:
                self._store = Store.open(self.settings)
        return self._store.add_generation(
            self.router.store_name(checkpoint),
            prompt,
            text,
            stats.settings,
            stats=stats,
            base_model=self.router.base_name(checkpoint),
            metadata={"source": "api", "checkpoint": checkpoint, **meta},
        )


def generation(params: Mapping[str, Any], max_tokens: int) -> GenerationSettings:
    """Workbench's settings from OpenAI's parameters, with OpenAI's defaults (temperature 1, top-p 1, nothing
    else cut), so a request means what it means on other OpenAI-compatible servers."""
    try:
        return GenerationSettings(
            temperature=params.get("temperature", 1.0),
            top_p=params.get("top_p", 1.0),
            top_k=params.get("top_k", 0),
            min_p=params.get("min_p", 0.0),
            adapter_strength=params.get("adapter_strength", 1.0),
            repetition_penalty=params.get("repetition_penalty", 1.0),
            max_new_tokens=max_tokens,
            seed=params.get("seed"),
            stop=params.get("stop", ()),
        )
    except WorkbenchError as exc:
        raise ApiError.from_workbench(exc) from None


def seeded(settings: GenerationSettings, i: int) -> GenerationSettings:
    """The settings of the i-th of n choices: a given seed counts up, so each choice differs and all repeat."""
    return settings if settings.seed is None or i == 0 else settings.replace(seed=(settings.seed + i) % 2**32)


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def envelope(kind: str, model: str, ident: str) -> dict[str, Any]:
    """The fields every response and chunk starts with."""
    return {"id": ident, "object": kind, "created": int(time.time()), "model": model}
