"""Benchmark case `feedback_loop`: do the chat's likes and dislikes, trained with KTO, make the liked behaviour more
common on prompts nobody rated?

The preference is known: a reply is liked when it names the asked fact (the keywords of `quality.PROMPTS`, the
demo questions) and disliked otherwise. The embedded model answers the first TRAIN_PROMPTS questions with several
seeds under the default settings (transformers backend, the one adapters are served on); each reply goes into a
fresh store as a chat reply with a like or a dislike, exactly as the chat stores them; `write_like_records` turns
them into the KTO file (the same path as `workbench train --from-likes`) and `run_job` trains a LoRA adapter. Then
the parent (the base model) and the child (the adapter) answer the other, held-out questions with the same seeds,
and the share of liked replies of each is reported with its 95% Wilson interval, in one run.

    python -m workbench bench --case feedback_loop

Small on purpose (a 2-core shared machine): the intervals are wide and say so; the figures in docs/finetune.md
were measured at these sizes.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from workbench.bench import BenchContext, Measure
from workbench.bench.quality import MAX_NEW_TOKENS, PROMPTS, is_right
from workbench.generation.settings import GenerationSettings

TRAIN_PROMPTS = 12  # the first 12 demo questions are rated; the other 8 are held out
TRAIN_SEEDS = tuple(range(4))
HELD_OUT_SEEDS = tuple(range(6))
RUN = "feedback-loop"
# A short KTO run: 8 steps of 4 (two thirds of the replies), the Fine-tune tab's demo learning rate.
TRAINING = {"max_steps": 8, "batch_size": 4, "learning_rate": 5e-4, "max_length": 160, "warmup": 0.1}


def _replies(engine, prompts, seeds, checkpoint: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(question, keywords, reply) per prompt and seed, under the default settings."""
    gen = GenerationSettings()
    requests = [
        ([{"role": "user", "content": q}], gen.replace(seed=s, max_new_tokens=MAX_NEW_TOKENS), checkpoint)
        for q, _ in prompts
        for s in seeds
    ]
    texts = [text for text, _ in engine.generate_many(requests)]
    return [(q, k, texts[i * len(seeds) + j]) for i, (q, k) in enumerate(prompts) for j in range(len(seeds))]


def _rate(replies) -> tuple[int, int]:
    return sum(is_right(reply, keywords) for _, keywords, reply in replies), len(replies)


def _react(settings, replies) -> dict:
    """The replies as chat replies with a like (names the fact) or a dislike, and the KTO file from them."""
    from workbench.store import Store
    from workbench.training.likes import LikeFilters, likes_path, write_like_records

    with Store.open(settings) as store:
        for question, keywords, reply in replies:
            gid = store.add_generation("base", question, reply, None, origin="chat")
            store.add_feedback("like" if is_right(reply, keywords) else "dislike", gid, rater="bench")
        filters = LikeFilters()
        path = likes_path(settings, RUN)
        counts = write_like_records(store, settings, filters, path)
    return {"filters": filters.to_dict(), "counts": counts, "store": "sqlite", "path": str(path)}


def case_feedback_loop(ctx: BenchContext) -> list[Measure]:
    """The liked-reply rate on held-out questions: the KTO child against its parent."""
    from workbench.generation.engine import ChatEngine
    from workbench.ratings.scoring import wilson_interval
    from workbench.training import JobConfig, run_job

    train, held_out = PROMPTS[:TRAIN_PROMPTS], PROMPTS[TRAIN_PROMPTS:]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = f"sqlite:///{home / 'var' / 'workbench.db'}"  # a fresh store and adapters folder, the models shared
        settings = dataclasses.replace(ctx.settings, home=home, adapters_dir=home / "adapters", db_url=store)
        engine = ChatEngine.load(settings, backend="transformers")
        try:
            rated = _replies(engine, train, TRAIN_SEEDS, "base")
            likes = _react(settings, rated)
            path = likes.pop("path")
            config = JobConfig(run=RUN, data=path, method="kto", likes=likes, **TRAINING)
            summary = run_job(config, settings, progress=False, echo=lambda *_: None, store=False)
            parent = _rate(_replies(engine, held_out, HELD_OUT_SEEDS, "base"))
            child = _rate(_replies(engine, held_out, HELD_OUT_SEEDS, RUN))
        finally:
            engine.close()
    counts = likes["counts"]

    def interval(k: int, n: int) -> str:
        low, high = wilson_interval(k, n)
        return f"{k}/{n}, 95% Wilson {low:.2f}-{high:.2f}"

    n = f"{len(held_out)} held-out questions x {len(HELD_OUT_SEEDS)} seeds"
    return [
        Measure.against(
            "feedback_loop",
            f"liked replies after KTO ({n})",
            child[0] / child[1],
            "share",
            "parent (the base model)",
            parent[0] / parent[1],
            f"child {interval(*child)}; parent {interval(*parent)}",
        ),
        Measure(
            "feedback_loop",
            f"rated replies ({len(train)} questions x {len(TRAIN_SEEDS)} seeds)",
            counts.get("liked", 0) + counts.get("disliked", 0),
            "replies",
            note=f"{counts.get('liked', 0)} liked, {counts.get('disliked', 0)} disliked",
        ),
        Measure(
            "feedback_loop",
            "KTO validation loss, end / start",
            summary["val_loss_end"] / summary["val_loss_start"],
            "ratio",
            note=f"{summary['step']} steps, {summary['val_loss_start']:.3f} -> {summary['val_loss_end']:.3f}",
        ),
    ]
