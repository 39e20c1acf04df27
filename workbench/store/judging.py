"""What an LLM judge reads from the store: the pairs of outputs to judge, and every verdict to measure it by.

    queue = store.judge_pairs("judge:SmolLM2-135M-Instruct")   # pairs people voted on, not judged by it yet
    queue = store.judge_pairs(judge, prompt_set="vicuna-bench", limit=20)
    queue.pairs; queue.judged; queue.waiting                     # up to 20 pairs; how many judged, how many not
    store.pair_verdicts()   # one slim row per vote: ids, winner, rater, and a judge's verdict in each order
    judge_reason("a", "tie", replies)   # the reason a judge's vote is stored with; `orders_of` reads it back

Without a prompt set the pairs are those people voted on (a judge's votes never make a pair worth judging); with
one they are the set's pairs as the Arena serves them: two non-empty outputs of one of its prompts (the same
conversation) from two different checkpoints under the same generation settings. A pair this judge already voted
on is counted (`judged`) and not returned, so a judge run that stopped half-way carries on where it was.

A judge judges each pair twice, once with each output shown first, and its vote's reason records both verdicts
on its first line, "order a,b -> a; order b,a -> tie", each about generations a and b whatever was shown first,
then the start of each reply. `pair_verdicts` reads that line back (`first`, `second`), so the position
consistency of a judge is measured from the store; people's reasons are never read there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from workbench.store.records import JUDGE_PREFIX, judge_rater
from workbench.store.schema import Checkpoint, Generation, Prompt, PromptSet, Vote
from workbench.store.visitors import servable

VERDICT_COLUMNS = ["vote_id", "generation_a_id", "generation_b_id", "winner", "rater", "first", "second"]
VERDICTS = ("a", "b", "tie")  # what one judgement says about generations a and b
_ORDERS = re.compile(r"^order a,b -> (a|b|tie); order b,a -> (a|b|tie)")
REPLY_SHOWN = 900  # characters of each judge reply kept in the reason (the whole reason stays under 2,000)


def judge_reason(first: str, second: str, replies: tuple[str, str] = ("", "")) -> str:
    """The reason a judge's vote is stored with: its verdict in each order, then the start of each reply.

    Args:
        first: The verdict ("a", "b" or "tie") with generation a shown first.
        second: The verdict with generation b shown first (still about a and b).
        replies: The judge's two replies, in the same order.
    """
    if first not in VERDICTS or second not in VERDICTS:
        raise ValueError(f"A verdict is one of {VERDICTS}, not {first!r} / {second!r}.")
    lines = [f"order a,b -> {first}; order b,a -> {second}"]
    for order, reply in zip(("a,b", "b,a"), replies, strict=True):
        text = " ".join(reply.split())
        lines.append(f"{order}: {text[:REPLY_SHOWN]}{'...' if len(text) > REPLY_SHOWN else ''}")
    return "\n".join(lines)


def orders_of(reason: str | None) -> tuple[str, str] | None:
    """(first, second) from a judge vote's reason (see `judge_reason`), or None when it records no orders."""
    found = _ORDERS.match(reason or "")
    return (found.group(1), found.group(2)) if found else None


@dataclass(frozen=True)
class JudgePair:
    """Two stored outputs of one conversation, for a judge.

    Attributes:
        a: Id of the generation with the lower id (the store keeps a pair's votes in id order).
        b: Id of the other generation.
        messages: The conversation both answer (system prompt first when there is one).
        output_a: Generation a's text.
        output_b: Generation b's text.
        model_a: Generation a's checkpoint.
        model_b: Generation b's checkpoint.
    """

    a: int
    b: int
    messages: list[dict[str, str]]
    output_a: str
    output_b: str
    model_a: str
    model_b: str


@dataclass(frozen=True)
class JudgeQueue:
    """What a judge has left to do.

    Attributes:
        pairs: The pairs to judge now (at most the limit asked for), oldest outputs first.
        judged: Pairs on offer that this judge has voted on already.
        waiting: Pairs on offer that it has not voted on (all of them, whatever the limit).
    """

    pairs: list[JudgePair]
    judged: int
    waiting: int


def _human() -> Any:
    return ~Vote.rater.startswith(JUDGE_PREFIX, autoescape=True)


class JudgingMixin:
    """judge_pairs, pair_verdicts."""

    def _candidates(self, s, prompt_set: str | None, ga, gb):
        """select(ga, gb) over the candidate pairs, ga the generation with the lower id."""
        if prompt_set is None:
            voted = select(Vote.generation_a_id, Vote.generation_b_id).where(_human()).distinct().subquery()
            return (
                select(ga, gb)
                .select_from(voted)
                .join(ga, ga.id == voted.c.generation_a_id)
                .join(gb, gb.id == voted.c.generation_b_id)
            )
        self.prompts(prompt_set)  # one sentence for a set that does not exist
        in_set = (
            select(Prompt.id, Prompt.text)
            .join(PromptSet, PromptSet.id == Prompt.prompt_set_id)
            .where(PromptSet.name == prompt_set)
        )
        rows = s.execute(in_set).all()
        ids, texts = [r[0] for r in rows], sorted({r[1] for r in rows})
        same_request = and_(
            ga.prompt_hash == gb.prompt_hash,
            ga.id < gb.id,
            ga.checkpoint_id != gb.checkpoint_id,
            ga.settings_hash == gb.settings_hash,
        )
        # Outputs made for the set carry its prompt's id; imported ones (exports drop the id) match by text.
        return select(ga, gb).join(gb, same_request).where(or_(ga.prompt_id.in_(ids), ga.prompt.in_(texts)))

    def judge_pairs(
        self, judge: str, *, prompt_set: str | None = None, limit: int | None = None, visitor_prompts: bool = False
    ) -> JudgeQueue:
        """The pairs `judge` has not voted on yet (oldest outputs first), and the counts of the pairs on offer.

        Args:
            judge: The judge's rater name ("judge:<model>").
            prompt_set: Judge this prompt set's pairs instead of the pairs people voted on.
            limit: At most this many pairs (None: all).
            visitor_prompts: Offer pairs on prompts visitors typed too (the Arena's battles, chats, prompts waiting
                for approval: `workbench.store.visitors.servable`); off, a visitor's text never reaches the judge
                (WORKBENCH_JUDGE_VISITOR_PROMPTS).
        """
        judge = judge_rater(judge)
        ga, gb = aliased(Generation), aliased(Generation)
        ca, cb = aliased(Checkpoint), aliased(Checkpoint)
        mine = (
            select(Vote.id)
            .where(Vote.rater == judge, Vote.generation_a_id == ga.id, Vote.generation_b_id == gb.id)
            .correlate(ga, gb)
            .exists()
        )
        with self._read() as s:
            base = self._candidates(s, prompt_set, ga, gb).where(ga.output != "", gb.output != "")
            if not visitor_prompts:
                base = base.where(servable(ga), servable(gb))
            done = s.scalar(select(func.count()).select_from(base.where(mine).subquery()))
            waiting = s.scalar(select(func.count()).select_from(base.where(~mine).subquery()))
            query = (
                base.add_columns(ca.name, cb.name)
                .join(ca, ca.id == ga.checkpoint_id)
                .join(cb, cb.id == gb.checkpoint_id)
                .where(~mine)
                .order_by(ga.id, gb.id)
                .limit(limit)
            )
            pairs = [
                JudgePair(a.id, b.id, list(a.messages), a.output, b.output, name_a, name_b)
                for a, b, name_a, name_b in s.execute(query)
            ]
        return JudgeQueue(pairs, int(done or 0), int(waiting or 0))

    def pair_verdicts(self):
        """Every pairwise vote as one slim row, oldest first (columns VERDICT_COLUMNS).

        winner is "a", "b", "tie" or "bothbad" about the generations a and b (a has the lower id); first and
        second are a judge's verdicts with a and with b shown first (see `judge_reason`), None for a person's vote
        or a judge's vote that does not record them (imported from elsewhere).
        """
        import pandas as pd

        query = select(
            Vote.id,
            Vote.generation_a_id,
            Vote.generation_b_id,
            Vote.winner,
            Vote.rater,
            case((Vote.rater.startswith(JUDGE_PREFIX, autoescape=True), Vote.reason), else_=None),
        ).order_by(Vote.created_at, Vote.id)
        with self._read() as s:
            rows = s.execute(query).all()
        out = [(*r[:5], *(orders_of(r[5]) or (None, None))) for r in rows]
        return pd.DataFrame(out, columns=VERDICT_COLUMNS)
