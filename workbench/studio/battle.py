"""An open Arena battle: a visitor's own prompt answered by two anonymous contestants, turn after turn, then a vote.

    battle = new_battle(router.checkpoints(), "checkpoint", BATTLE_SETTINGS, rng)   # two checkpoints, or settings
    replies = start_turn(router, battle, "Write a haiku about rain.")                # both at once, on the slots
    for left_text, right_text in lockstep(*replies):                                  # what the page may show
        ...
    battle = finish_turn(router, store, battle, "Write a haiku about rain.", replies) # both answers stored
    kept = vote(store, battle, "left", rater=None, reason="", session=voter)          # the names come after

A contestant is a checkpoint under generation settings. With two checkpoints or more a battle puts two different
checkpoints under the same settings; with one (every fresh install has only the base model) it puts that checkpoint
under two settings from its `ladder` (two temperatures of `SETTINGS_LADDER`, or for a local adapter two strengths
of `STRENGTH_LADDER`), and says why. Each side keeps its own conversation: a second turn goes on
from that side's own first answer, as in Chatbot Arena. The names stay in the battle (a server-side value) until
the vote: `lockstep` releases text on both sides at the pace of the slower one, so neither side's speed shows.

Every turn's two answers are stored as generations (origin "battle": never served to other raters); the vote goes
on the last turn's two answers, whose contexts differ only in the assistant's earlier turns. Torch-free.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings

if TYPE_CHECKING:
    from workbench.generation.router import Router
    from workbench.generation.streaming import Reply
    from workbench.store import Store

DIFFERS = ("checkpoint", "settings")
# Settings pairs: one checkpoint at two of these temperatures, so votes say which one people prefer.
SETTINGS_LADDER = (0.2, 0.7, 1.2)
# A local adapter's settings pairs: two of these strengths, so votes say how strongly people would apply it.
STRENGTH_LADDER = (0.5, 1.0, 1.5)
ONE_CHECKPOINT = (
    "Only one checkpoint is served here, so the Arena compares two generation settings of it (which one do you "
    "prefer?). Train an adapter on the Fine-tune tab to compare checkpoints."
)
FAILED = "One of the two answers failed, so this battle is void (nothing was stored): start a new one."
PACE_S = 0.05  # how often a streaming battle's text is released to the page


@dataclass(frozen=True)
class Contestant:
    """One anonymous side: a checkpoint (the router's name: "base", an adapter, "remote:NAME") and its settings."""

    checkpoint: str
    settings: GenerationSettings


@dataclass(frozen=True)
class Turn:
    """One exchange: the visitor's message, each side's answer and the ids of their stored generations."""

    message: str
    left: str
    right: str
    left_id: int
    right_id: int


@dataclass(frozen=True)
class Battle:
    """One visitor's battle (kept on the server, never sent to the page: it holds the names).

    Attributes:
        left: Contestant A (shown on the left).
        right: Contestant B.
        differ: What tells them apart: "checkpoint" or "settings".
        note: Why the battle is what it is, when it is not what was asked (one checkpoint only), else "".
        key: The battle's idempotency key: its vote is recorded once.
        turns: The finished exchanges.
        voted: Whether the visitor has voted (a voted battle takes no more turns).
    """

    left: Contestant
    right: Contestant
    differ: str
    note: str = ""
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: tuple[Turn, ...] = ()
    voted: bool = False

    def conversation(self, side: str, message: str | None = None) -> list[dict[str, str]]:
        """The messages side "left" or "right" has seen (its own answers), plus `message` as the next user turn."""
        messages: list[dict[str, str]] = []
        for turn in self.turns:
            messages += [
                {"role": "user", "content": turn.message},
                {"role": "assistant", "content": getattr(turn, side)},
            ]
        if message is not None:
            messages.append({"role": "user", "content": message})
        return messages


def new_battle(
    checkpoints: Sequence[str],
    differ: str,
    settings: GenerationSettings,
    rng: random.Random | None = None,
    served: Settings | None = None,
) -> Battle:
    """Draw two contestants and their sides at random.

    Args:
        checkpoints: The checkpoints that can answer (`Router.checkpoints()`).
        differ: "checkpoint" (two checkpoints under `settings`) or "settings" (one checkpoint under two
            temperatures of `SETTINGS_LADDER`, or a local adapter at two strengths: `ladder`). With fewer than two
            checkpoints, "checkpoint" becomes "settings" and the battle's note says why.
        settings: The settings every contestant starts from (max new tokens, top-p, ...).
        rng: Random source (tests pass a seeded one).
        served: The app's settings, so another served family's own name counts as a base model (`scalable`).
    """
    # The adaptive sampler (issue 20) may choose the pair here instead of drawing uniformly.
    rng = rng or random.Random()
    if differ not in DIFFERS:
        raise WorkbenchError(f"A battle's answers differ in a checkpoint or in settings, not {differ!r}.")
    names = list(dict.fromkeys(checkpoints))
    if not names:
        raise WorkbenchError("No checkpoint can answer here: the model is not available.")
    note = ""
    if differ == "checkpoint" and len(names) < 2:
        differ, note = "settings", ONE_CHECKPOINT
    if differ == "checkpoint":
        a, b = rng.sample(names, 2)
        return Battle(Contestant(a, settings), Contestant(b, settings), differ, note)
    checkpoint = rng.choice(names)
    low, high = rng.sample(ladder(checkpoint, [settings.replace(temperature=t) for t in SETTINGS_LADDER], served), 2)
    return Battle(Contestant(checkpoint, low), Contestant(checkpoint, high), differ, note)


def scalable(checkpoint: str, served: Settings | None = None) -> bool:
    """Whether a checkpoint is a local adapter, whose strength Workbench sets (a base model has no adapter, and a
    remote server's adapters are served as trained unless its entry says otherwise). With `served`, another
    served family's own name ("gemma") is a base model too."""
    from workbench.gate.checkpoints import checkpoint_kind

    return bool(checkpoint) and checkpoint_kind(checkpoint, served) == "adapters"


def ladder(
    checkpoint: str, temperatures: Sequence[GenerationSettings], served: Settings | None = None
) -> list[GenerationSettings]:
    """The settings one checkpoint's settings pairs draw two from: `temperatures` (settings that differ in
    temperature), or for a local adapter its middle one at each strength of STRENGTH_LADDER."""
    if not scalable(checkpoint, served):
        return list(temperatures)
    middle = temperatures[len(temperatures) // 2]
    return [middle.replace(adapter_strength=s) for s in STRENGTH_LADDER]


def start_turn(router: Router, battle: Battle, message: str) -> list[Reply]:
    """Start both answers to `message` together (the backend's slots); [left, right] replies.

    Raises:
        WorkbenchError: The battle was voted on, or a request was refused (its sentence names no contestant).
    """
    if battle.voted:
        raise WorkbenchError("You voted on this battle: press New battle to start another.")
    requests = [
        (battle.conversation(side, message), contestant.settings, contestant.checkpoint)
        for side, contestant in (("left", battle.left), ("right", battle.right))
    ]
    try:
        return router.start_many(requests)
    except WorkbenchError as exc:
        raise WorkbenchError(_anonymous(exc, battle)) from None


def _anonymous(exc: WorkbenchError, battle: Battle) -> str:
    """The refusal's sentence, unless it would name a contestant (then a sentence that names none)."""
    text = str(exc)
    names = {battle.left.checkpoint, battle.right.checkpoint} - {"base"}
    named = any(name in text for name in names) or any(word in text.lower() for word in ("adapter", "remote"))
    return FAILED if named else text


class _Pump:
    """Reads one reply to its end in a thread (a Reply is read by iterating it), keeping its chunks."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.chunks: list[str] = []
        self.error: WorkbenchError | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True, name="workbench-battle").start()

    def _run(self) -> None:
        try:
            for chunk in self.reply:
                self.chunks.append(chunk)
        except WorkbenchError as exc:
            self.error = exc
        finally:
            self.done.set()


def lockstep(left: Reply, right: Reply, pace_s: float = PACE_S) -> Iterator[tuple[str, str]]:
    """The two answers' text as the page may show it, every `pace_s` seconds until both are done.

    Each side shows no more chunks than the other side has made, until that side is finished, so the visitor
    reads both at the slower one's pace: neither side's speed (nor its time to the first token) tells who it is.
    The last item holds both whole answers. Stopping early cancels both.

    Raises:
        WorkbenchError: An answer failed (`FAILED`); the other is cancelled.
    """
    pumps = (_Pump(left), _Pump(right))
    shown = (-1, -1)
    try:
        while True:
            finished = all(p.done.is_set() for p in pumps)
            if any(p.error for p in pumps):
                raise WorkbenchError(FAILED)
            counts = [len(p.chunks) for p in pumps]
            limit = min((n for n, p in zip(counts, pumps, strict=True) if not p.done.is_set()), default=None)
            upto = tuple(n if limit is None else min(n, limit) for n in counts)
            if upto != shown or finished:
                shown = upto
                yield "".join(pumps[0].chunks[: upto[0]]), "".join(pumps[1].chunks[: upto[1]])
            if finished:
                return
            time.sleep(pace_s)
    finally:
        for reply in (left, right):
            reply.cancel()  # a no-op for a finished reply; frees the slot of one the page stopped reading


def finish_turn(router: Router, store: Store, battle: Battle, message: str, replies: Sequence[Reply]) -> Battle:
    """Store both finished answers of a turn (origin "battle") and return the battle with the turn added.

    Raises:
        WorkbenchError: An answer was cancelled before it finished (nothing is stored).
    """
    if any(reply.stats.finish_reason == "cancelled" for reply in replies):
        raise WorkbenchError("The answers were stopped before they finished, so nothing was stored.")
    ids = []
    for side, contestant, reply in zip(("left", "right"), (battle.left, battle.right), replies, strict=True):
        ids.append(
            store.add_generation(
                router.store_name(contestant.checkpoint),
                battle.conversation(side, message),
                reply.text,
                contestant.settings,
                stats=reply.stats,
                base_model=router.base_name(contestant.checkpoint),
                metadata={"arena": {"battle": battle.key, "turn": len(battle.turns) + 1, "side": side}},
                origin="battle",
            )
        )
    turn = Turn(message, replies[0].text, replies[1].text, ids[0], ids[1])
    return replace(battle, turns=(*battle.turns, turn))


def vote(
    store: Store, battle: Battle, choice: str, *, rater: str | None, reason: str | None, session: str | None
) -> tuple[Battle, str]:
    """Record the visitor's vote on the battle's last turn; returns the voted battle and the choice that counts
    ("left", "right", "tie", "bothbad": the first one, when this battle was voted on before)."""
    from workbench.store import PairItem

    if not battle.turns:
        raise WorkbenchError("There is nothing to vote on yet: type a prompt first, or press Show a pair.")
    last = battle.turns[-1]
    left, right = store.get_generation(last.left_id), store.get_generation(last.right_id)
    low, high = sorted((left, right), key=lambda g: g.id)
    item = PairItem(a=low, b=high, shown_left="a" if low is left else "b", key=battle.key)
    kept = store.kept_choice(item, store.vote_on_pair(item, choice, rater=rater, reason=reason, session=session))
    return replace(battle, voted=True), kept


def names(router: Router, battle: Battle) -> dict[str, Any]:
    """What the receipt reveals: each side's checkpoint (its name in the store) and settings."""
    return {
        "left": router.store_name(battle.left.checkpoint),
        "right": router.store_name(battle.right.checkpoint),
        "left_settings": battle.left.settings.to_dict(),
        "right_settings": battle.right.settings.to_dict(),
    }
