"""Benchmark case `demo_quality`: does a newcomer's first question get a sensible answer with the defaults?

Twenty simple factual and instruction prompts (no system prompt, as a newcomer types them), each asked with three
seeds on llama.cpp, the backend the app serves the embedded model with; a reply counts as right when it holds the
prompt's keyword (one of a few accepted spellings, whole words, any case). The share answered right under today's
defaults (`GenerationSettings()`, the Chat tab's selected preset) is measured against the defaults before issue 22
(temperature 0.7, top-p 0.95, top-k 50, repetition penalty 1) in the same run, on the same prompts and seeds.

    python -m workbench bench --case demo_quality
    python -m workbench bench --case demo_quality --json

`score(replies)` is the pure part (tested without a model); the prompts are `PROMPTS`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from workbench.bench import BenchContext, Measure
from workbench.generation.settings import GenerationSettings

SEEDS = (0, 1, 2)
MAX_NEW_TOKENS = 48  # the answer comes first; a long ramble would find a keyword by luck
# The defaults the app shipped with before issue 22 (the anchor).
OLD_DEFAULTS = GenerationSettings(temperature=0.7, top_p=0.95, top_k=50, repetition_penalty=1.0)
# (prompt, accepted keywords): a reply is right when any keyword appears as a whole word.
PROMPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What is 2 + 2?", ("4", "four")),
    ("Which planet do we live on?", ("Earth",)),
    ("What is the largest ocean on Earth?", ("Pacific",)),
    ("Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("What gas do plants take in from the air to make food?", ("carbon dioxide", "CO2")),
    ("At what temperature in Celsius does water freeze?", ("0", "zero")),
    ("How many legs does a spider have?", ("eight", "8")),
    ("What is the opposite of hot?", ("cold",)),
    ("Translate 'thank you' into Spanish.", ("gracias",)),
    ("What do bees make?", ("honey",)),
    ("What is the chemical formula of water?", ("H2O",)),
    ("In which direction does the sun rise?", ("east",)),
    ("What language is spoken in Brazil?", ("Portuguese",)),
    ("Name the largest planet in our solar system.", ("Jupiter",)),
    ("Write one word that rhymes with cat.", ("hat", "bat", "mat", "rat", "sat", "fat", "pat", "vat", "chat", "flat")),
)


def is_right(reply: str, keywords: Sequence[str]) -> bool:
    """Whether `reply` holds one of `keywords` as a whole word (any case)."""
    return any(re.search(rf"(?<!\w){re.escape(k)}(?!\w)", reply, re.IGNORECASE) for k in keywords)


def score(replies: Sequence[str], prompts: Sequence[tuple[str, Sequence[str]]] = PROMPTS) -> float:
    """The share of replies that are right; `replies` holds len(SEEDS) replies per prompt, prompt by prompt."""
    if not prompts or len(replies) % len(prompts):
        raise ValueError(f"{len(replies)} replies do not split evenly over {len(prompts)} prompts.")
    per = len(replies) // len(prompts)
    right = sum(is_right(r, prompts[i // per][1]) for i, r in enumerate(replies))
    return right / len(replies)


def answers(engine, gen: GenerationSettings, seeds: Sequence[int] = SEEDS) -> list[str]:
    """Each prompt's replies under `gen`, one per seed, prompt by prompt (all submitted together)."""
    requests = [
        ([{"role": "user", "content": prompt}], gen.replace(seed=seed, max_new_tokens=MAX_NEW_TOKENS), "base")
        for prompt, _ in PROMPTS
        for seed in seeds
    ]
    return [text for text, _ in engine.generate_many(requests)]


def case_demo_quality(ctx: BenchContext) -> list[Measure]:
    """Share of the demo prompts answered right with the defaults, against the defaults before issue 22."""
    from workbench.bench.serving import _engine
    from workbench.generation.presets import SHIPPED

    engine = _engine(ctx.settings, "llamacpp")
    try:
        new = score(answers(engine, GenerationSettings()))
        old = score(answers(engine, OLD_DEFAULTS))
        precise = score(answers(engine, SHIPPED["precise"]))  # issue 22's starting point: 0.2 / 0.9 / 1.1
        greedy = score(answers(engine, GenerationSettings(temperature=0), seeds=(0,)))
    finally:
        engine.close()
    d = GenerationSettings()
    label = f"temp {d.temperature:g}, top-p {d.top_p:g}, top-k {d.top_k}, rep {d.repetition_penalty:g}"
    n = f"{len(PROMPTS)} prompts x {len(SEEDS)} seeds"
    return [
        Measure.against(
            "demo_quality",
            f"answered right, defaults ({label}; {n})",
            new,
            "share",
            "old defaults (0.7/0.95/50/1)",
            old,
            "higher is better; a keyword per prompt",
        ),
        Measure("demo_quality", f"answered right, the precise preset ({n})", precise, "share", note="context"),
        Measure("demo_quality", f"answered right, greedy ({len(PROMPTS)} prompts)", greedy, "share", note="context"),
    ]
