"""Benchmark case `feedback_loop`: do the chat's likes and dislikes, trained with KTO, make the liked behaviour more
common on prompts nobody rated?

The preference is known and one the base model does not already satisfy most of the time: a rater likes a reply
that answers in a few words (it ends on its own within SHORT_WORDS words) and still names the asked fact (the
keywords of `quality.PROMPTS`, the demo questions); a longer reply, a reply cut off at the token cap, or one that
misses the fact is disliked. The embedded model answers the first TRAIN_PROMPTS questions with TRAIN_SEEDS seeds
under the default settings; each reply goes into a fresh store as a chat reply with a like or a dislike, exactly as
the chat stores them; `write_like_records` turns them into the KTO file (the path of `workbench train
--from-likes`) and `run_job` trains a LoRA adapter. Then the parent (the base model) and the child (the adapter)
answer the other, held-out questions with HELD_OUT_SEEDS seeds, and the share of liked replies of each is reported
with its 95% Wilson interval, and their difference with a 95% bootstrap interval over the held-out questions
(replies to one question are not independent), in one run. The share that names the fact at all is reported for
both too: a child that only got shorter by dropping the answer would show there.

Replies are generated on llama.cpp, the backend the app serves the embedded model and its adapters with (the
adapter converted to GGUF, `generation.lora_gguf`); the transformers backend is several times slower on a CPU.

    python -m workbench bench --case feedback_loop

The preference and the sizes were fixed before any held-out reply was looked at; the figures in docs/finetune.md
were measured at these sizes, on a shared 2-core CPU machine.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from workbench.bench import BenchContext, Measure
from workbench.bench.quality import PROMPTS, is_right
from workbench.generation.settings import GenerationSettings

TRAIN_PROMPTS = 12  # the first 12 demo questions are rated; the other 8 are held out
TRAIN_SEEDS = tuple(range(8))
HELD_OUT_SEEDS = tuple(range(100, 108))  # seeds no rated reply used
SHORT_WORDS = 12  # a one-sentence answer
MAX_NEW_TOKENS = 64  # room for a short answer several times over; a reply cut off here is not short
RUN = "feedback-loop"
# About one pass over the ~86 training replies in batches of 4, the Fine-tune tab's demo learning rate.
TRAINING = {"max_steps": 24, "batch_size": 4, "learning_rate": 5e-4, "max_length": 160, "warmup": 0.1, "eval_steps": 8}
RESAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class Reply:
    question: str
    keywords: tuple[str, ...]
    text: str
    finished: bool  # ended on its own (not cut off at MAX_NEW_TOKENS)

    @property
    def right(self) -> bool:
        return is_right(self.text, self.keywords)

    @property
    def liked(self) -> bool:
        """The rater's preference: a short, finished reply that names the asked fact."""
        return self.finished and len(self.text.split()) <= SHORT_WORDS and self.right


def _replies(engine, prompts, seeds, checkpoint: str) -> list[Reply]:
    """One reply per prompt and seed under the default settings, prompt by prompt."""
    gen = GenerationSettings()
    requests = [
        ([{"role": "user", "content": q}], gen.replace(seed=s, max_new_tokens=MAX_NEW_TOKENS), checkpoint)
        for q, _ in prompts
        for s in seeds
    ]
    out = engine.generate_many(requests)
    asked = [(q, tuple(k)) for q, k in prompts for _ in seeds]
    done = [(text, stats.finish_reason != "length") for text, stats in out]
    return [Reply(q, k, text, finished) for (q, k), (text, finished) in zip(asked, done, strict=True)]


def _react(settings, replies: list[Reply]) -> dict:
    """The replies as chat replies with a like or a dislike, and the KTO file from them."""
    from workbench.store import Store
    from workbench.training.likes import LikeFilters, likes_path, write_like_records

    with Store.open(settings) as store:
        for reply in replies:
            gid = store.add_generation("base", reply.question, reply.text, None, origin="chat")
            store.add_feedback("like" if reply.liked else "dislike", gid, rater="bench")
        filters = LikeFilters()
        path = likes_path(settings, RUN)
        counts = write_like_records(store, settings, filters, path)
    return {"filters": filters.to_dict(), "counts": counts, "store": "sqlite", "path": str(path)}


def difference_interval(child: list[bool], parent: list[bool], groups: int, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of mean(child) - mean(parent), both laid out as `groups` equal blocks (the replies to
    one question), resampling whole questions: the same resample for both sides, since they answer the same ones."""
    c = np.asarray(child, dtype=float).reshape(groups, -1).mean(axis=1)
    p = np.asarray(parent, dtype=float).reshape(groups, -1).mean(axis=1)
    draws = np.random.default_rng(seed).integers(0, groups, size=(RESAMPLES, groups))
    deltas = (c[draws] - p[draws]).mean(axis=1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return float(low), float(high)


def _share(replies: list[Reply], what: str) -> tuple[int, int]:
    return sum(getattr(r, what) for r in replies), len(replies)


def case_feedback_loop(ctx: BenchContext) -> list[Measure]:
    """The liked-reply rate on held-out questions: the KTO child against its parent."""
    from workbench.generation.engine import ChatEngine
    from workbench.training import JobConfig, run_job

    train, held_out = PROMPTS[:TRAIN_PROMPTS], PROMPTS[TRAIN_PROMPTS:]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        store = f"sqlite:///{home / 'var' / 'workbench.db'}"  # a fresh store and adapters folder, the models shared
        settings = dataclasses.replace(ctx.settings, home=home, adapters_dir=home / "adapters", db_url=store)
        engine = ChatEngine.load(settings, backend="llamacpp")
        try:
            rated = _replies(engine, train, TRAIN_SEEDS, "base")
            parent = _replies(engine, held_out, HELD_OUT_SEEDS, "base")
            likes = _react(settings, rated)
            path = likes.pop("path")
            steps = {"max_steps": ctx.steps} if ctx.steps else {}
            config = JobConfig(run=RUN, data=path, method="kto", likes=likes, **{**TRAINING, **steps})
            summary = run_job(config, settings, progress=False, echo=lambda *_: None, store=False)
            child = _replies(engine, held_out, HELD_OUT_SEEDS, RUN)
        finally:
            engine.close()
    return _measures(likes["counts"], summary, rated, parent, child, len(held_out))


def _measures(counts: dict, summary: dict, rated, parent, child, questions: int) -> list[Measure]:
    from workbench.ratings.scoring import wilson_interval

    def interval(k: int, n: int) -> str:
        low, high = wilson_interval(k, n)
        return f"{k}/{n}, 95% Wilson {low:.2f}-{high:.2f}"

    liked_child, liked_parent = _share(child, "liked"), _share(parent, "liked")
    low, high = difference_interval([r.liked for r in child], [r.liked for r in parent], questions)
    right_child, right_parent = _share(child, "right"), _share(parent, "right")
    n = f"{questions} held-out questions x {len(HELD_OUT_SEEDS)} seeds"
    words = f"median words: child {np.median([len(r.text.split()) for r in child]):.0f}, "
    words += f"parent {np.median([len(r.text.split()) for r in parent]):.0f}"
    return [
        Measure.against(
            "feedback_loop",
            f"liked replies after KTO ({n}; liked: finished, <= {SHORT_WORDS} words, names the fact)",
            liked_child[0] / liked_child[1],
            "share",
            "parent (the base model)",
            liked_parent[0] / liked_parent[1],
            f"child {interval(*liked_child)}; parent {interval(*liked_parent)}; child - parent "
            f"{(liked_child[0] - liked_parent[0]) / liked_child[1]:+.2f}, 95% bootstrap over questions "
            f"{low:+.2f} to {high:+.2f}",
        ),
        Measure.against(
            "feedback_loop",
            f"replies that name the fact ({n})",
            right_child[0] / right_child[1],
            "share",
            "parent (the base model)",
            right_parent[0] / right_parent[1],
            f"child {interval(*right_child)}; parent {interval(*right_parent)}; {words}",
        ),
        Measure(
            "feedback_loop",
            f"rated replies ({TRAIN_PROMPTS} questions x {len(TRAIN_SEEDS)} seeds)",
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
