"""The Arena tab: blind pairwise rating for a Space's visitors, written to the same store as the dashboard.

Two ways in, one pair of anonymous answers side by side, four vote buttons, the names revealed after the vote:
- **Your own prompt** (an open battle, `workbench/ui/arena_battle.py`): the visitor types a prompt (or takes a
  suggested one from the Vicuna-bench set); both answers stream side by side in lock-step and the visitor may go on
  talking for more turns before voting. Each side keeps its own conversation.
- **Show a pair**: two stored outputs for a prompt of the set (`Store.next_pair_for`), the two contestants chosen
  by the sampler (`workbench.ratings.pairs`, WORKBENCH_PAIRS); when none is left for this visitor, the tab answers a
  random prompt of the set with two contestants the sampler picks, stores both outputs and serves them. Once the
  ranking is settled (adaptive pairs), the tab says so and serves none.
A pair differs in the checkpoint, or, with "One checkpoint, two settings", in the generation settings of one
checkpoint. With only one checkpoint (the base model of a fresh Space) the Arena serves settings pairs and says
why. What is being judged stays in the session's server-side state with its idempotency key, so a double click
or a repeated API call records one vote; refusals and errors are one sentence in the status under the buttons.

API endpoints (gradio_client keeps the battle or pair in its session between calls); `rater` may be empty (the
visitor is then anonymous: typed names count only where the app runs on loopback), `differ` is "checkpoint" or
"settings":
    arena_send(message, rater, differ) -> (left, right, status)    # streams; a battle's next turn; left/right are
                                                                   # the two conversations as chat messages
    arena_suggest() -> message                                     # a prompt of the set, to send or edit
    arena_next(rater, differ) -> (left, right, status, reason)     # a stored pair; reason "" (emptied)
    vote_left(reason, rater) / vote_right / vote_tie / vote_bothbad -> status (the names revealed)
"""

from __future__ import annotations

import threading
from dataclasses import replace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.gate.visitor import Visitor
from workbench.generation.settings import GenerationSettings
from workbench.studio.battle import ONE_CHECKPOINT
from workbench.ui.context import AppContext
from workbench.views.markup import plain_markdown, vote_receipt

PROMPT_SET = "vicuna-bench"
# The settings of pairs made on the fly: a fixed seed, so a prompt's output is made once and re-used.
ARENA_SETTINGS = GenerationSettings(temperature=0.7, top_p=0.95, top_k=50, max_new_tokens=128, seed=0)
# Settings pairs made on the fly: one checkpoint at three temperatures, so votes say which one people prefer (a local
# adapter's pairs differ in its strength instead, at the middle temperature: `workbench.studio.battle.ladder`).
ARENA_SETTINGS_PAIRS = tuple(replace(ARENA_SETTINGS, temperature=t) for t in (0.2, 0.7, 1.2))
PAIR_KINDS = (("Two checkpoints", "checkpoint"), ("One checkpoint, two settings", "settings"))
CHOICES = (("left", "A is better"), ("right", "B is better"), ("tie", "Tie"), ("bothbad", "Both are bad"))
START = (
    "Type a prompt (or press **Suggest a prompt**) and both answer side by side; or press **Show a pair**. "
    "Names are revealed after your vote."
)
NOTICE = (
    "Your prompts and both answers are kept with your vote, to rank the models; the owner of this app can export "
    "them. Do not type anything private."
)


class Arena:
    """The tab's link to the store (opened on first use) and to the engine (only to make a missing pair)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._store = None
        self._lock = threading.Lock()

    def store(self):
        """The store named by the app's settings, with the shipped prompt sets loaded (opened once)."""
        with self._lock:
            if self._store is None:
                from workbench.studio.promptsets import load_shipped
                from workbench.ui.stores import shared_store

                store = shared_store(self.ctx.settings)
                load_shipped(store, [PROMPT_SET])
                self._store = store
            return self._store

    def contestants(self, who: Visitor | None, differ: str) -> list[str]:
        """The checkpoints a new pair may use: those `who` may choose (None: an in-process caller, all of them).
        A settings pair (one checkpoint, two settings) is made with the checkpoint the owner promoted, while
        `who` may choose it (`workbench.studio.promote`)."""
        from workbench.studio.promote import promoted

        names = self.ctx.checkpoint_choices() if who is None else self.ctx.choices_for(who)
        default = promoted(self.ctx.settings) if differ == "settings" else None
        return [default] if default in names else names

    def one_checkpoint(self) -> bool:
        """Whether only one checkpoint can answer here (then pairs differ in settings)."""
        return len(self.ctx.checkpoint_choices()) < 2

    def next_pair(
        self,
        rater: str | None,
        session: str,
        who: Visitor | None = None,
        *,
        generate: bool = True,
        differ: str = "checkpoint",
    ):
        """The next pair for this visitor (two checkpoints, or with `differ="settings"` one checkpoint under two
        settings); makes one with the engine when the store has none left (counted against `who`'s reply limit;
        None: an in-process caller, not counted)."""
        from workbench.ratings.pairs import chooser

        store = self.store()
        choose = chooser(store, self.ctx.settings, differ)  # the sampler (WORKBENCH_PAIRS) picks the contestants
        item = store.next_pair_for(rater, session=session, differ=differ, choose=choose)
        if item is None and generate and not choose.settled:
            from workbench.studio.compare import ensure_pair
            from workbench.studio.preference import ensure_settings_pair

            if who is not None:
                self.ctx.take_reply(who)  # making a pair runs the model: counted like a reply

            router = self.ctx.router() if who is None or who.owner else self.ctx.router().for_visitors()
            checkpoints = self.contestants(who, differ)
            cap = self.ctx.settings.arena_max_new_tokens  # the app's length of an Arena answer
            pairs = [s.replace(max_new_tokens=min(s.max_new_tokens, cap)) for s in ARENA_SETTINGS_PAIRS]
            single = ARENA_SETTINGS.replace(max_new_tokens=min(ARENA_SETTINGS.max_new_tokens, cap))
            for _ in range(3):  # a random prompt may already have a pair this visitor rated
                if differ == "settings":
                    ensure_settings_pair(router, store, PROMPT_SET, checkpoints, pairs, choose=choose)
                else:
                    ensure_pair(router, store, PROMPT_SET, checkpoints, single, choose=choose)
                item = store.next_pair_for(rater, session=session, differ=differ, choose=choose)
                if item is not None:
                    break
        return item


def visitor(
    ctx: AppContext, rater: str | None, request: gr.Request | None, profile: gr.OAuthProfile | None = None
) -> tuple[str | None, str]:
    """The rater's name (None: anonymous) and the voter id their ballots count under.

    The id is a keyed digest of the visitor's address as our proxy saw it (`AppContext.voter`), never anything
    from the client (a Gradio session hash is the client's to choose, so it would give one person any number of
    ballots). A name is taken from a Hugging Face login on a Space (`profile`, read from the server's signed
    session), or as typed by the owner on this machine: on a public server anyone could type any name.
    """
    from workbench.store import check_rater

    who = ctx.visitor(request)
    voter = ctx.voter(who)
    username = getattr(profile, "username", None)
    if username:
        return check_rater(f"{username}@hf"), voter
    name = (rater or "").strip() if isinstance(rater, str) else ""
    if not name or not who.owner:
        return None, voter
    return check_rater(name), voter


def say(exc: WorkbenchError) -> str:
    """A refusal as the status shows it: the gate's public sentence (secrets, URLs and paths hidden), literal."""
    from workbench.gate.sentence import public_sentence

    return plain_markdown(public_sentence(exc))


def buttons(interactive: bool) -> list:
    """Updates for the four vote buttons."""
    return [gr.update(interactive=interactive) for _ in CHOICES]


def pair_chats(item) -> tuple[list[dict], list[dict]]:
    """A stored pair as the two chat windows show it: the prompt, then each side's output."""
    system = f"[system: {item.a.system_prompt}]\n\n" if item.a.system_prompt else ""
    asked = {"role": "user", "content": system + item.a.prompt}
    return tuple([asked, {"role": "assistant", "content": record.output}] for record in (item.left, item.right))


def make_next_fn(arena: Arena):
    """The function behind "Show a pair" and the arena_next endpoint."""

    def show_pair(
        rater: str, differ: str = "checkpoint", request: gr.Request = None, profile: gr.OAuthProfile | None = None
    ):
        note = ""
        try:
            if differ not in dict(PAIR_KINDS).values():
                raise WorkbenchError(f"Pairs differ in a checkpoint or in settings, not {differ!r}.")
            name, session = visitor(arena.ctx, rater, request, profile)
            who = arena.ctx.visitor(request)
            few = differ == "checkpoint" and arena.one_checkpoint()
            item = arena.next_pair(name, session, who, differ=differ, generate=not few)
            if item is None and few:  # no dead end: one checkpoint still has settings to compare
                note = ONE_CHECKPOINT + " "
                item = arena.next_pair(name, session, who, differ="settings")
        except WorkbenchError as exc:
            return gr.skip(), gr.skip(), gr.skip(), say(exc), gr.skip(), *[gr.skip()] * len(CHOICES)
        if item is None:
            from workbench.ratings.pairs import arena_note

            settled = arena_note(arena.store(), arena.ctx.settings, differ)
            status = settled or "No pair is left for you to rate. Thank you! Type a prompt of your own to go on."
            return None, [], [], status, "", *buttons(False)
        left, right = pair_chats(item)
        status = note + "Which answer is better? Names are revealed after your vote."
        return item, left, right, status, "", *buttons(True)

    return show_pair


def make_vote_fn(arena: Arena, choice: str):
    """The function behind one vote button and its vote_<choice> endpoint: a stored pair or a battle."""
    from workbench.studio import battle as battles

    def vote(judged, reason: str, rater: str, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        if judged is None or (isinstance(judged, battles.Battle) and not judged.turns):
            return judged, "There is nothing to vote on yet: type a prompt, or press Show a pair.", *buttons(False)
        try:
            name, session = visitor(arena.ctx, rater, request, profile)
            arena.ctx.take_vote(arena.ctx.visitor(request))
            store = arena.store()
            if name is not None and name.endswith("@hf"):
                store.join_rater(session, name)  # their anonymous ballots from before they signed in are theirs
            if isinstance(judged, battles.Battle):
                judged, kept = battles.vote(store, judged, choice, rater=name, reason=reason, session=session)
                revealed = battles.names(arena.ctx.router(), judged)
                after = " Type a prompt for the next battle, or press **Show a pair**."
            else:
                kept = store.kept_choice(
                    judged, store.vote_on_pair(judged, choice, rater=name, reason=reason, session=session)
                )
                revealed = {
                    "left": judged.left.checkpoint,
                    "right": judged.right.checkpoint,
                    "left_settings": judged.left.settings,
                    "right_settings": judged.right.settings,
                }
                after = " Press **Show a pair** for the next one."
        except WorkbenchError as exc:
            return judged, say(exc), *[gr.skip()] * len(CHOICES)
        status = vote_receipt(kept, **revealed)
        if kept != choice:
            status += " (You had already judged this pair; your first vote is the one that counts.)"
        return judged, status + after, *buttons(False)

    return vote
