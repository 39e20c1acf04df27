"""The Arena's open battles: a visitor's own prompt answered by two anonymous contestants, streamed side by side.

`wire(arena, page)` connects the Arena tab's message box, Send, "Suggest a prompt" and "New battle" to the
functions here; the battle itself (contestants, lock-step streaming, storing, the vote) is
`workbench.studio.battle`. A message goes through the visitor's limits before any model sees it
(`check_chat` sizes, two replies of the reply limit per turn, counted by the client's address as the chat counts
them), both answers start together on the backend's slots, and the page gets text on both sides at the slower
side's pace. What identifies the contestants stays in the server-side state until the vote.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.gate.sizes import check_chat
from workbench.generation.settings import GenerationSettings
from workbench.studio import battle as battles
from workbench.ui.arena import CHOICES, PROMPT_SET, START, Arena, buttons, say, visitor

ANSWERING = "Both are answering…"
ASK = "Which answer is better? Vote, or go on talking: the names are revealed after your vote."
EMPTY = "Type a prompt first, or press Suggest a prompt."


def battle_settings(arena: Arena) -> GenerationSettings:
    """The settings every battle starts from (settings pairs change only the temperature): the app's Arena length,
    never more than a visitor may ask for."""
    cap = min(arena.ctx.settings.arena_max_new_tokens, arena.ctx.sizes.max_new_tokens)
    return GenerationSettings(temperature=0.7, top_p=0.95, top_k=50, max_new_tokens=cap)


def chats(battle: battles.Battle | None, message: str | None = None, left: str = "", right: str = ""):
    """The two chat windows for a battle: its finished turns, then `message` with the answers so far."""
    if battle is None:
        return [], []
    sides = []
    for side, text in (("left", left), ("right", right)):
        messages = battle.conversation(side, message)
        if message is not None:
            messages.append({"role": "assistant", "content": text})
        sides.append(messages)
    return sides[0], sides[1]


def make_send_fn(arena: Arena):
    """The streaming function behind the message box, Send and the arena_send endpoint: one battle turn."""

    def send(
        message: str,
        rater: str,
        differ: str,
        judged,
        request: gr.Request = None,
        profile: gr.OAuthProfile | None = None,
    ):
        current = judged if isinstance(judged, battles.Battle) and not judged.voted else None
        votable = current is not None and bool(current.turns)
        text = (message or "").strip()
        try:
            if not text:
                raise WorkbenchError(EMPTY)
            if differ not in battles.DIFFERS:
                raise WorkbenchError(f"Pairs differ in a checkpoint or in settings, not {differ!r}.")
            visitor(arena.ctx, rater, request, profile)  # a bad typed name is refused before any work
            who = arena.ctx.visitor(request)
            # A visitor's battle is fought among what visitors may choose, and may not make llama.cpp drop adapters.
            router = arena.ctx.router() if who.owner else arena.ctx.router().for_visitors()
            battle = current or battles.new_battle(
                arena.contestants(who, differ), differ, battle_settings(arena), served=arena.ctx.settings
            )
            sides = [battle.conversation(side) for side in ("left", "right")]
            longest = max(sides, key=lambda messages: sum(len(m["content"]) for m in messages))
            check_chat(who.sizes, text, "", longest, battle.left.settings)
            arena.ctx.take_reply(who, 2)  # a turn is two replies, counted like the chat's
            replies = battles.start_turn(router, battle, text)
        except WorkbenchError as exc:
            yield judged, *chats(current), say(exc), gr.skip(), *buttons(votable)
            return
        yield battle, *chats(battle, text), ANSWERING, "", *buttons(False)
        try:
            for left, right in battles.lockstep(*replies):
                yield battle, *chats(battle, text, left, right), ANSWERING, gr.skip(), *buttons(False)
            battle = battles.finish_turn(router, arena.store(), battle, text, replies)
        except WorkbenchError as exc:  # nothing of this turn is kept: the message goes back in the box
            yield battle, *chats(battle), say(exc), text, *buttons(bool(battle.turns))
            return
        note = f"{battle.note} " if battle.note and len(battle.turns) == 1 else ""
        yield battle, *chats(battle), note + ASK, gr.skip(), *buttons(True)

    return send


def make_suggest_fn(arena: Arena):
    """The function behind "Suggest a prompt" and the arena_suggest endpoint: a random prompt of the set."""

    def suggest() -> str:
        prompts = arena.store().prompts(PROMPT_SET)
        return random.choice(prompts)["text"] if prompts else ""

    return suggest


def new_battle():
    """What "New battle" (and choosing another kind of pair) shows: an empty screen."""
    return None, [], [], START, "", *buttons(False)


def wire(arena: Arena, page: SimpleNamespace) -> None:
    """Connect the battle's events to the Arena tab's components (`page`: judged, differ, rater, left, right,
    message, send, suggest, new, reason, votes, status)."""
    # Battles share the chat's queue lane, as wide as the backend's slots (each turn is two requests on them).
    lane = {"concurrency_id": "generate", "concurrency_limit": arena.ctx.settings.slots}
    inputs = [page.message, page.rater, page.differ, page.judged]
    outputs = [page.judged, page.left, page.right, page.status, page.message, *page.votes]
    send = make_send_fn(arena)
    page.message.submit(send, inputs, outputs, api_name="arena_send", **lane)
    page.send.click(send, inputs, outputs, api_visibility="private", **lane)
    page.suggest.click(make_suggest_fn(arena), None, [page.message], api_name="arena_suggest", concurrency_limit=None)
    cleared = [page.judged, page.left, page.right, page.status, page.reason, *page.votes]
    page.new.click(new_battle, None, cleared, concurrency_limit=None, api_visibility="private")
    page.differ.input(new_battle, None, cleared, concurrency_limit=None, api_visibility="private")
    assert len(page.votes) == len(CHOICES)
