"""Side-by-side comparison of checkpoints: one prompt, several checkpoints, one set of generation settings.

Every output is stored as a generation (prompt, checkpoint, exact settings, token counts, timing) and the same
request later is answered from the store instead of the model. The checkpoint names a user picks are "base"
and adapter names (what the engine takes); in the store the base model is recorded under its own name, as the
evaluation suites do, so ratings and metrics of one model line up; a remote model ("remote:NAME") is recorded
under its registry name. Torch-free: the engine (a ChatEngine, or a Router across models) is passed in.

    request = Request(prompt="Hi!", checkpoint="base", settings=GenerationSettings(seed=0))
    found = stored(store, settings, request)                  # a GenerationRecord, or None
    reply, = engine.start_many([(request.messages, request.settings, request.checkpoint)])
    record = save(store, engine, request, reply)              # after iterating the reply's text
    run_prompt_set(engine, store, "vicuna-bench", ["base", "run/checkpoint-20"], GenerationSettings(seed=0))
    ensure_pair(engine, store, "vicuna-bench", ["base", "run"], settings, rng)   # for the Arena
    make_pairs(engine, store, "settings")          # new pairs for the Rate page: base, default preset vs creative
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation import router
from workbench.generation.settings import GenerationSettings, conversation

if TYPE_CHECKING:
    from workbench.generation.engine import ChatEngine
    from workbench.generation.router import Router
    from workbench.generation.streaming import Reply
    from workbench.store import GenerationRecord, Store

MIN_CHECKPOINTS, MAX_CHECKPOINTS = 2, 4


@dataclass(frozen=True)
class Request:
    """One output to show: a prompt for one checkpoint under exact settings.

    Attributes:
        prompt: The user's message.
        checkpoint: "base" or an adapter name.
        settings: Generation settings (a fixed seed makes the output reproducible and re-usable).
        system_prompt: Optional system prompt.
        prompt_id: The prompt-set prompt it answers, if any.
    """

    prompt: str
    checkpoint: str
    settings: GenerationSettings
    system_prompt: str | None = None
    prompt_id: int | None = None

    @property
    def messages(self) -> list[dict[str, str]]:
        """The conversation sent to the model."""
        return conversation(None, self.prompt, self.system_prompt)


def checkpoint_choices(settings: Settings) -> list[str]:
    """ "base", every adapter usable with the configured base model, and each remote model of registry.yaml
    with its adapters ("remote:NAME[/ADAPTER]"); no model is loaded."""
    return router.choices(settings)


def check_checkpoints(checkpoints: Sequence[str]) -> list[str]:
    """The chosen checkpoints, refused unless there are 2 to 4 different ones."""
    chosen = list(dict.fromkeys(checkpoints))
    if not MIN_CHECKPOINTS <= len(chosen) <= MAX_CHECKPOINTS:
        raise WorkbenchError(
            f"Choose {MIN_CHECKPOINTS} to {MAX_CHECKPOINTS} checkpoints to compare, not {len(chosen)}."
        )
    return chosen


def store_name(settings: Settings, checkpoint: str) -> str:
    """The checkpoint's name in the store: the base model's own name for "base", "NAME" or "NAME/ADAPTER" for a
    remote model, else the adapter name."""
    return router.store_name(settings, checkpoint)


def stored(store: Store, settings: Settings, request: Request) -> GenerationRecord | None:
    """The stored output for exactly this request, or None."""
    if not request.prompt or not request.prompt.strip():
        raise WorkbenchError("The prompt is empty: type one or pick one from a prompt set.")
    return store.find_generation(
        request.prompt, store_name(settings, request.checkpoint), request.settings, system_prompt=request.system_prompt
    )


def save(store: Store, engine: ChatEngine | Router, request: Request, reply: Reply) -> GenerationRecord | None:
    """Store a reply the caller has iterated to its end; returns its record, or None for a cancelled reply
    (not stored)."""
    if reply.stats.finish_reason == "cancelled":
        return None
    gid = store.add_generation(
        engine.store_name(request.checkpoint),
        request.prompt,
        reply.text,
        request.settings,
        system_prompt=request.system_prompt,
        stats=reply.stats,
        prompt_id=request.prompt_id,
        base_model=engine.base_name(request.checkpoint),
        metadata={"source": "compare", "checkpoint": request.checkpoint},
    )
    return store.get_generation(gid)


def generate(
    engine: ChatEngine | Router, store: Store, request: Request, *, reuse: bool = True
) -> tuple[GenerationRecord, bool]:
    """The output for a request and whether it came from the store (generated and stored otherwise)."""
    if reuse:
        found = stored(store, engine.settings, request)
        if found is not None:
            return found, True
    reply = engine.stream(request.messages, request.settings, adapter=request.checkpoint)
    reply.result()
    record = save(store, engine, request, reply)
    if record is None:
        raise WorkbenchError("The generation was cancelled before it finished.")
    return record, False


Progress = Callable[[int, int, str], None]


def run_prompt_set(
    engine: ChatEngine | Router,
    store: Store,
    prompt_set: str,
    checkpoints: Sequence[str],
    settings: GenerationSettings,
    *,
    system_prompt: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    before_generating: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Answer every prompt of a set with every checkpoint (stored outputs are re-used).

    Args:
        engine: The chat engine.
        store: The store (read for re-use, written with each new output).
        prompt_set: The prompt set's name in the store.
        checkpoints: "base" and/or adapter names.
        settings: One set of generation settings for all.
        system_prompt: Optional system prompt for all.
        limit: Only the first `limit` prompts.
        progress: Called with (done, total, label) after each output.
        before_generating: Called with the number of outputs the store lacks before any is generated; it may
            raise WorkbenchError to refuse the run (a visitor's reply limit counts each output).

    Returns:
        {"generated": n, "from_store": m}
    """
    prompts = store.prompts(prompt_set)[: limit or None]
    checkpoints = list(dict.fromkeys(checkpoints))
    if not checkpoints:
        raise WorkbenchError("Choose at least one checkpoint to run the prompt set on.")
    requests = [
        (i, Request(prompt["text"], checkpoint, settings, system_prompt, prompt_id=prompt["id"]))
        for i, prompt in enumerate(prompts)
        for checkpoint in checkpoints
    ]
    total, counts = len(requests), {"generated": 0, "from_store": 0}

    def tick(i: int, request: Request) -> None:
        if progress is not None:
            done = counts["generated"] + counts["from_store"]
            progress(done, total, f"prompt {i + 1} of {len(prompts)} · {request.checkpoint}")

    missing = []
    for i, request in requests:
        if stored(store, engine.settings, request) is None:
            missing.append((i, request))
        else:
            counts["from_store"] += 1
            tick(i, request)
    if missing and before_generating is not None:
        before_generating(len(missing))
    for (i, request), _ in zip(missing, generate_together(engine, store, [r for _, r in missing]), strict=True):
        counts["generated"] += 1
        tick(i, request)
    return counts


def generate_together(
    engine: ChatEngine | Router, store: Store, requests: Sequence[Request]
) -> Iterator[GenerationRecord]:
    """Generate every request at once (the backend's slots or batches) and store each output as it finishes,
    in order; yields the stored records. A cancelled output is not stored and raises; when one fails or the
    caller stops early, the rest are cancelled."""
    replies = engine.start_many([(r.messages, r.settings, r.checkpoint) for r in requests])
    try:
        for request, reply in zip(requests, replies, strict=True):
            reply.result()
            record = save(store, engine, request, reply)
            if record is None:
                raise WorkbenchError("The generation was cancelled before it finished.")
            yield record
    finally:
        for reply in replies:
            reply.cancel()  # a no-op for the finished ones


def ensure_pair(
    engine: ChatEngine | Router,
    store: Store,
    prompt_set: str,
    checkpoints: Sequence[str],
    settings: GenerationSettings,
    rng: random.Random | None = None,
    choose: Choose | None = None,
) -> tuple[GenerationRecord, GenerationRecord]:
    """Make sure one random prompt of the set has an output from two different checkpoints (generating what the
    store lacks); returns the two generations. The Arena calls this when it has no pair left to serve.

    The two checkpoints are random, or chosen by `choose` (`workbench.ratings.pairs.chooser`: the sampler), which
    is given every pair of their store names and returns one, or None when no pair needs votes (refused then).
    """
    rng = rng or random.Random()
    choices = list(dict.fromkeys(checkpoints))
    if len(choices) < 2:
        raise WorkbenchError("Pairs need at least two checkpoints: train an adapter first (the Fine-tune tab).")
    prompts = store.prompts(prompt_set)
    if not prompts:
        raise WorkbenchError(f"The prompt set {prompt_set!r} has no prompts.")
    pair = rng.sample(choices, 2) if choose is None else chosen_pair(choose, {c: engine.store_name(c) for c in choices})
    prompt = rng.choice(prompts)
    requests = [Request(prompt["text"], c, settings, prompt["system_prompt"], prompt["id"]) for c in pair]
    records = stored_or_made(engine, store, requests)  # the two sides are generated together
    return records[0], records[1]


Choose = Callable[[list[tuple[str, str]]], "tuple[str, str] | None"]


def chosen_pair(choose: Choose, names: dict[Any, str]) -> list[Any]:
    """The two of `names`' keys whose names (store names, settings labels) `choose` picks among all pairs."""
    by_name = {name: key for key, name in names.items()}
    picked = choose(sorted(tuple(sorted(p)) for p in itertools.combinations(by_name, 2)))
    if picked is None:
        raise WorkbenchError("The ranking is settled: no pair of these needs more votes.")
    return [by_name[picked[0]], by_name[picked[1]]]


def stored_or_made(engine: ChatEngine | Router, store: Store, requests: Sequence[Request]) -> list[GenerationRecord]:
    """The stored output of each request, in order; those the store lacks are generated together and stored."""
    found = [stored(store, engine.settings, r) for r in requests]
    made = iter(generate_together(engine, store, [r for r, f in zip(requests, found, strict=True) if f is None]))
    return [f if f is not None else next(made) for f in found]


PAIR_SET, PAIR_PROMPTS, PAIR_TOKENS = "vicuna-bench", 5, 96  # what "make pairs" answers: a few short replies


def make_pairs(
    engine: ChatEngine | Router,
    store: Store,
    differ: str,
    settings_pair: Sequence[GenerationSettings] | None = None,
    *,
    prompt_set: str = PAIR_SET,
    limit: int | None = None,
    progress: Progress | None = None,
    offered: Sequence[str] | None = None,
    before_generating: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Outputs that make new pairs to rate: the first `limit` (PAIR_PROMPTS) prompts of a set answered by the first two
    checkpoints under the first setting (`differ="checkpoint"`), or by the base model under both settings
    (`differ="settings"`, which a fresh install with no adapter can always do). Stored outputs are re-used.
    `settings_pair` defaults to the default preset against "creative" (seed 0, PAIR_TOKENS new tokens).
    `offered` is the checkpoints the caller may choose (default: all); `before_generating` counts the outputs the
    store lacks against the caller's reply budget before any is generated (see `run_prompt_set`).

    Returns:
        {"generated": n, "from_store": m}
    """
    if settings_pair is None:
        from workbench.generation import presets

        chosen = (presets.SHIPPED[presets.DEFAULT_PRESET], presets.SHIPPED["creative"])
        settings_pair = [g.replace(seed=0, max_new_tokens=PAIR_TOKENS) for g in chosen]
    offered = list(checkpoint_choices(engine.settings) if offered is None else offered)
    if differ == "settings":
        checkpoints, gens = ["base"], list(settings_pair[:2])
        if len(gens) < 2 or gens[0] == gens[1]:
            raise WorkbenchError("Settings pairs need two different generation settings.")
        if "base" not in offered:
            raise WorkbenchError("The base model is not offered to visitors on this server.")
    else:
        checkpoints, gens = offered[:2], list(settings_pair[:1])
        if len(checkpoints) < 2:
            raise WorkbenchError(
                "Pairs of checkpoints need an adapter besides the base model: train one (the Fine-tune tab), or "
                "rate settings pairs of the base model."
            )
    counts = {"generated": 0, "from_store": 0}
    for gen in gens:
        done = run_prompt_set(
            engine,
            store,
            prompt_set,
            checkpoints,
            gen,
            limit=limit or PAIR_PROMPTS,
            progress=progress,
            before_generating=before_generating,
        )
        counts = {k: counts[k] + done[k] for k in counts}
    return counts


def summary(record: Any) -> str:
    """One line about a stored output: tokens, speed, why it stopped, seed."""
    parts = []
    if record.new_tokens is not None:
        parts.append(f"{record.new_tokens} tokens")
    if record.tokens_per_s:
        parts.append(f"{record.tokens_per_s:.1f} tok/s")
    if record.finish_reason:
        parts.append(f"stopped: {record.finish_reason}")
    if record.seed is not None:
        parts.append(f"seed {record.seed}")
    return " · ".join(parts)
