"""Every checkpoint a request can name, across models: the main model's ("base" and its adapters) and each
remote model of registry.yaml ("remote:NAME" and "remote:NAME/ADAPTER"), each served by its own ChatEngine.

    router = Router(settings)                 # nothing is loaded until a request needs it
    router.checkpoints()                      # ["base", "my-run", "remote:gpt4o-mini", "remote:gpt4o-mini/my-run"]
    reply = router.stream(messages, settings, adapter="remote:gpt4o-mini")
    router.start_many([(messages, settings, "base"), (messages, settings, "remote:gpt4o-mini")])

A Router answers the same calls as a ChatEngine (stream, generate, start_many, generate_many, route,
store_name, base_name), so the Compare page, the Arena, the Lab and the suites put a remote model side by side
with local checkpoints. The store names a remote checkpoint by its registry name ("gpt4o-mini",
"gpt4o-mini/my-run"), like any other checkpoint on the leaderboard. `choices` and `store_name` are torch-free.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, Message, ReplyStats
from workbench.generation.streaming import Reply, collect
from workbench.registry import BASE_NAME, BaseModel, list_adapters, list_bases, resolve_base

if TYPE_CHECKING:
    from workbench.generation.backends.base import Extras
    from workbench.generation.engine import ChatEngine, Request

REMOTE = "remote:"


def remote_bases(settings: Settings, main: BaseModel | None = None) -> list[BaseModel]:
    """The usable remote models of registry.yaml other than the main model."""
    return [b for b in list_bases(settings) if b.kind == "remote" and b.usable and (main is None or b != main)]


def choices(settings: Settings) -> list[str]:
    """Every checkpoint name a request can use, without loading a model: "base", the main model's usable
    adapters, then each remote model and its adapters."""
    main = resolve_base(settings)
    names = [BASE_NAME] + [a.name for a in list_adapters(settings, main) if a.usable]
    for base in remote_bases(settings, main):
        names += [f"{REMOTE}{base.name}"] + [f"{REMOTE}{base.name}/{a}" for a, _ in base.remote.adapters]
    return names


def split(checkpoint: str) -> tuple[str | None, str]:
    """("NAME", "base" or adapter) for "remote:NAME[/ADAPTER]"; (None, checkpoint) for the main model's."""
    if not checkpoint.startswith(REMOTE):
        return None, checkpoint or BASE_NAME
    name, _, adapter = checkpoint[len(REMOTE) :].partition("/")
    return name, adapter or BASE_NAME


def store_name(settings: Settings, checkpoint: str) -> str:
    """The checkpoint's name in the store: the model's own name for a base model, "NAME/ADAPTER" for a remote
    model's adapter, else the adapter name."""
    remote, local = split(checkpoint)
    if remote is not None:
        return remote if local == BASE_NAME else f"{remote}/{local}"
    return resolve_base(settings).name if local == BASE_NAME else local


class Router:
    """ChatEngines by model, chosen per request by checkpoint name."""

    def __init__(self, settings: Settings, main: Callable[[], ChatEngine] | None = None) -> None:
        """`main` returns the main model's engine (loading it on first call); ChatEngine.load by default."""
        self.settings = settings
        self._main = main
        self._engines: dict[str, ChatEngine] = {}
        self._lock = threading.Lock()
        self.evict = True  # whether a request may make a backend drop a loaded adapter (see `for_visitors`)

    def for_visitors(self) -> Router:
        """This router for visitors' requests: the same engines (nothing loads twice), but no request through it
        may make llama.cpp drop a loaded adapter for its own, so no visitor can make it restart over and over."""
        view = copy.copy(self)  # shares the engines and their lock
        view.evict = False
        return view

    def main(self) -> ChatEngine:
        """The main model's engine."""
        with self._lock:
            if "" not in self._engines:
                if self._main is not None:
                    self._engines[""] = self._main()
                else:
                    from workbench.generation.engine import ChatEngine

                    self._engines[""] = ChatEngine.load(self.settings)
            return self._engines[""]

    def checkpoints(self) -> list[str]:
        """Names a request can use (see `choices`)."""
        return choices(self.settings)

    def route(self, checkpoint: str | None) -> tuple[ChatEngine, str]:
        """The engine that serves `checkpoint`, and the checkpoint's name for that engine."""
        remote, local = split(checkpoint or BASE_NAME)
        if remote is None:
            return self.main(), local
        with self._lock:
            if remote not in self._engines:
                from workbench.generation.engine import ChatEngine

                known = {b.name for b in remote_bases(self.settings)}
                if remote not in known:
                    raise WorkbenchError(
                        f"There is no usable remote model {remote!r}; `python -m workbench models` lists them."
                    )
                self._engines[remote] = ChatEngine.load(self.settings, base_name=remote)
            return self._engines[remote], local

    def store_name(self, checkpoint: str) -> str:
        return store_name(self.settings, checkpoint)

    def base_name(self, checkpoint: str) -> str:
        """The base model a checkpoint belongs to (recorded with a new checkpoint in the store)."""
        remote, _ = split(checkpoint)
        return remote or resolve_base(self.settings).name

    # --- the ChatEngine calls ------------------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings | None = None,
        adapter: str | None = None,
        *,
        evict: bool = True,
        extras: Extras | None = None,
    ) -> Reply:
        engine, local = self.route(adapter)
        return engine.stream(messages, settings, local, evict=evict and self.evict, extras=extras)

    def complete(
        self,
        prompt_ids: Sequence[int],
        settings: GenerationSettings | None = None,
        adapter: str | None = None,
        *,
        extras: Extras | None = None,
    ) -> Reply:
        """Continue token ids as they are (`ChatEngine.complete`) on the checkpoint's engine."""
        engine, local = self.route(adapter)
        return engine.complete(prompt_ids, settings, local, evict=self.evict, extras=extras)

    def generate(
        self, messages: Sequence[Message], settings: GenerationSettings | None = None, adapter: str | None = None
    ) -> tuple[str, ReplyStats]:
        return self.stream(messages, settings, adapter).result()

    def start_many(self, requests: Sequence[Request]) -> list[Reply]:
        """Start every request, each model's together on its backend; the Replies in request order."""
        groups: dict[int, tuple[ChatEngine, list[int], list[Request]]] = {}
        for i, (messages, settings, checkpoint) in enumerate(requests):
            engine, local = self.route(checkpoint)
            _, indexes, group = groups.setdefault(id(engine), (engine, [], []))
            indexes.append(i)
            group.append((messages, settings, local))
        replies: list[Any] = [None] * len(requests)
        for engine, indexes, group in groups.values():
            for i, reply in zip(indexes, engine.start_many(group, evict=self.evict), strict=True):
                replies[i] = reply
        return replies

    def generate_many(
        self, requests: Sequence[Request], progress: Callable[[int, int], None] | None = None
    ) -> list[tuple[str, ReplyStats]]:
        return collect(self.start_many(requests), progress)

    def next_token_probabilities(
        self, messages: Sequence[Message], adapter: str | None = None, *, k: int = 10, temperature: float = 1.0
    ) -> list[tuple[int, str, float]]:
        engine, local = self.route(adapter)
        return engine.next_token_probabilities(messages, local, k=k, temperature=temperature)
