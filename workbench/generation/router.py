"""Every checkpoint a request can name, across models: the main model's ("base" and its adapters), each other
local family's ("FAMILY" and "FAMILY/ADAPTER": WORKBENCH_MODEL's further entries and registry.yaml's `serve: true`)
and each remote model of registry.yaml ("remote:NAME" and "remote:NAME/ADAPTER"), each served by its own
ChatEngine.

    router = Router(settings)                 # nothing is loaded until a request needs it
    router.checkpoints()                      # ["base", "my-run", "gemma", "gemma/gemma-chat", "remote:gpt4o-mini"]
    reply = router.stream(messages, settings, adapter="remote:gpt4o-mini")
    router.start_many([(messages, settings, "base"), (messages, settings, "remote:gpt4o-mini")])

A Router answers the same calls as a ChatEngine (stream, generate, start_many, generate_many, route,
store_name, base_name), so the Compare page, the Arena, the Lab and the suites put a remote model side by side
with local checkpoints. The store names a remote checkpoint by its registry name ("gpt4o-mini",
"gpt4o-mini/my-run"), and another family's the same way ("gemma", "gemma/gemma-chat"); the main family keeps
the names a single-model store always had (its model's name for "base", the bare adapter name), so an existing
store's votes stay with their checkpoints. A family's name wins over a main adapter run of the same name (that
adapter is left out of the lists). Families other than the main one load on first use (a request waits for the
load), unload when idle and are refused when they would not fit: `workbench.generation.budget`'s policy.
`choices` and `store_name` are torch-free.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, Message, ReplyStats
from workbench.generation.streaming import Reply, collect
from workbench.registry import BASE_NAME, BaseModel, list_adapters, list_bases, served_bases

if TYPE_CHECKING:
    from workbench.generation.backends.base import Extras
    from workbench.generation.budget import Policy
    from workbench.generation.engine import ChatEngine, Request

REMOTE = "remote:"


def _busy(engine: ChatEngine | None) -> bool:
    """Whether an engine is generating now (a backend that cannot tell counts as idle)."""
    busy = getattr(getattr(engine, "backend", None), "busy", None)
    return bool(busy()) if busy is not None else False


def remote_bases(settings: Settings, main: BaseModel | None = None) -> list[BaseModel]:
    """The usable remote models of registry.yaml other than the main model."""
    return [b for b in list_bases(settings) if b.kind == "remote" and b.usable and (main is None or b != main)]


def family_of(families: Sequence[BaseModel], checkpoint: str) -> tuple[BaseModel | None, str]:
    """(family, its checkpoint: "base" or the adapter) for "FAMILY[/ADAPTER]" of one of `families` (the local
    families other than the main one), else (None, checkpoint): the longest matching name wins, as a hub id's
    name holds a '/' itself."""
    for base in sorted(families, key=lambda b: -len(b.name)):
        if checkpoint == base.name:
            return base, BASE_NAME
        if checkpoint.startswith(base.name + "/"):
            return base, checkpoint[len(base.name) + 1 :]
    return None, checkpoint


def request_name(family: BaseModel | None, local: str) -> str:
    """The name a request uses for `local` ("base" or an adapter) of `family` (None: the main family): the inverse
    of `family_of`."""
    if family is None:
        return local
    return family.name if local == BASE_NAME else f"{family.name}/{local}"


def choices(settings: Settings) -> list[str]:
    """Every checkpoint name a request can use, without loading a model: "base", the main model's usable
    adapters, each other local family and its adapters, then each remote model and its adapters."""
    main, *others = served_bases(settings)
    names = [BASE_NAME] + [
        a.name for a in list_adapters(settings, main) if a.usable and family_of(others, a.name)[0] is None
    ]
    for base in (b for b in others if b.usable):
        names += [base.name] + [f"{base.name}/{a.name}" for a in list_adapters(settings, base) if a.usable]
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
    model's or another family's adapter, else (the main family's) the adapter name."""
    remote, local = split(checkpoint)
    if remote is None:
        main, *others = served_bases(settings)
        family, local = family_of(others, local)
        remote = family.name if family is not None else None
    if remote is not None:
        return remote if local == BASE_NAME else f"{remote}/{local}"
    return main.name if local == BASE_NAME else local


class Router:
    """ChatEngines by model, chosen per request by checkpoint name."""

    def __init__(self, settings: Settings, main: Callable[[], ChatEngine] | None = None) -> None:
        """`main` returns the main model's engine (loading it on first call); ChatEngine.load by default."""
        self.settings = settings
        self._main = main
        self._engines: dict[str, ChatEngine] = {}  # "" the main model, "family:NAME", or a remote model's name
        self._used: dict[str, float] = {}  # a family's key -> when a request last asked for it
        self._loading: dict[str, threading.Lock] = {}  # per family: a request for one that loads waits for it
        self._lock = threading.Lock()
        self.evict = True  # whether a request may make a backend drop a loaded adapter (see `for_visitors`)

    def for_visitors(self) -> Router:
        """This router for visitors' requests: the same engines (nothing loads twice), but no request through it
        may make llama.cpp drop a loaded adapter for its own, so no visitor can make it restart over and over."""
        view = copy.copy(self)  # shares the engines and their lock
        view.evict = False
        return view

    def policy(self) -> Policy:
        """How the served families share memory and cores (`workbench.generation.budget`)."""
        from workbench.generation.budget import plan

        return plan(self.settings)

    def main(self) -> ChatEngine:
        """The main model's engine."""
        with self._lock:
            if "" not in self._engines:
                if self._main is not None:
                    self._engines[""] = self._main()
                else:
                    from workbench.generation.engine import ChatEngine

                    self._engines[""] = ChatEngine.load(self.policy().engine_settings(self.settings))
            return self._engines[""]

    def checkpoints(self) -> list[str]:
        """Names a request can use (see `choices`)."""
        return choices(self.settings)

    def route(self, checkpoint: str | None) -> tuple[ChatEngine, str]:
        """The engine that serves `checkpoint`, and the checkpoint's name for that engine."""
        remote, local = split(checkpoint or BASE_NAME)
        if remote is None:
            self._unload_idle()
            family, local = family_of(served_bases(self.settings)[1:], local)
            return (self.main() if family is None else self.family(family)), local
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

    def family(self, base: BaseModel) -> ChatEngine:
        """A local family's engine, loaded on first use within the policy's memory (a request for a family that
        is loading waits for it); raises WorkbenchError, one sentence, for one that is unusable or cannot fit."""
        key = f"family:{base.name}"
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                self._used[key] = time.monotonic()
                if key in self._engines:
                    return self._engines[key]
            if not base.usable:
                raise WorkbenchError(base.reason)
            self.main()  # the main model loads first: it always stays loaded, and the budget counts it
            from workbench.generation.backends import choose_backend
            from workbench.generation.budget import estimate
            from workbench.generation.engine import ChatEngine
            from workbench.generation.fetch import local_file

            policy = self.policy()
            settings = policy.engine_settings(self.settings, base.name)
            need = estimate(local_file(base), settings, choose_backend(settings, base))
            self._make_room(policy, base, need)
            engine = ChatEngine.load(settings, base_name=base.name)
            with self._lock:
                self._engines[key] = engine
                self._used[key] = time.monotonic()
            return engine

    def loaded(self) -> dict[str, int]:
        """The local families loaded now, the main one first, with each one's estimated bytes."""
        from workbench.generation.budget import estimate

        with self._lock:
            engines = [e for k, e in sorted(self._engines.items()) if k == "" or k.startswith("family:")]
        return {e.base.name: estimate(e.base, e.settings, e.backend_name) for e in engines}

    def _make_room(self, policy: Policy, base: BaseModel, need: int) -> None:
        """Unload idle families, least recently used first, until `base` fits; else refuse it (one sentence). Through
        `for_visitors` nothing is unloaded: the family loads only where it fits beside what is loaded."""
        while True:
            loaded = self.loaded()
            try:
                policy.check_fits(base, need, loaded)
                return
            except WorkbenchError:
                # A visitor's request never unloads another family, so visitors cannot make two take turns.
                idle = [k for k in self._family_keys() if not _busy(self._engines.get(k))] if self.evict else []
                if not idle:
                    raise
                self._unload(min(idle, key=lambda k: self._used.get(k, 0.0)))

    def _family_keys(self) -> list[str]:
        with self._lock:
            return [k for k in self._engines if k.startswith("family:")]

    def _unload_idle(self) -> None:
        """Unload each family other than the main one that no request has asked for within WORKBENCH_IDLE_UNLOAD
        seconds (checked as requests come)."""
        idle = self.settings.idle_unload
        if not idle:
            return
        now = time.monotonic()
        for key in self._family_keys():
            if now - self._used.get(key, now) > idle and not _busy(self._engines.get(key)):
                self._unload(key)

    def _unload(self, key: str) -> None:
        with self._lock:
            engine = self._engines.pop(key, None)
        if engine is not None:
            engine.close()  # llama.cpp's server stops when its last running request ends

    def preload(self) -> list[str]:
        """Load the families the policy loads at start (after the main model); the names it could not load are
        returned (a request for one says why)."""
        failed = []
        for base in served_bases(self.settings)[1:]:
            if base.name in self.policy().preload:
                try:
                    self.family(base)
                except WorkbenchError:
                    failed.append(base.name)
        return failed

    def store_name(self, checkpoint: str) -> str:
        return store_name(self.settings, checkpoint)

    def base_name(self, checkpoint: str) -> str:
        """The base model a checkpoint belongs to (recorded with a new checkpoint in the store)."""
        remote, local = split(checkpoint)
        if remote is not None:
            return remote
        main, *others = served_bases(self.settings)
        family, _ = family_of(others, local)
        return (family or main).name

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
