"""The Arena tab: blind pairwise rating for a Space's visitors, written to the same store as the dashboard.

A visitor presses "Show a pair" and sees two outputs for the same prompt from two different checkpoints,
left/right drawn at random, names hidden; one of four buttons records the vote (with an optional reason)
and reveals the names. Pairs come from the store's generations (`Store.next_pair_for`), the two contestants
chosen by the sampler (`workbench.ratings.pairs`, WORKBENCH_PAIRS); when none is left for this visitor, the tab
answers a random prompt of the shipped Vicuna-bench set with two checkpoints the sampler picks, stores both
outputs and serves them. Once the ranking is settled (adaptive pairs), the tab says so and serves none. The pair
being judged is kept in the session's state with its idempotency key, so a double click or a repeated API call
records one vote.

API endpoints (gradio_client keeps the pair in its session between calls):
    arena_next(rater, differ="checkpoint") -> (prompt, left, right, status, reason)    # reason: "" (emptied)
`differ="settings"` serves one checkpoint's answers under two generation settings (preference per setting).
    vote_left(reason, rater) / vote_right / vote_tie / vote_bothbad -> status (the names revealed)
`rater` may be empty: the visitor is then anonymous. Ballots count per visitor address (one per pair), and
typed names are used only when the app runs on loopback; on a public server every visitor is anonymous.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from types import SimpleNamespace

import gradio as gr

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.ui.context import AppContext, Visitor, user_error
from workbench.ui.markup import vote_receipt

PROMPT_SET = "vicuna-bench"
# The settings of pairs made on the fly: a fixed seed, so a prompt's output is made once and re-used.
ARENA_SETTINGS = GenerationSettings(temperature=0.7, top_p=0.95, top_k=50, max_new_tokens=128, seed=0)
# Settings pairs made on the fly: one checkpoint at three temperatures, so votes say which one people prefer.
ARENA_SETTINGS_PAIRS = tuple(replace(ARENA_SETTINGS, temperature=t) for t in (0.2, 0.7, 1.2))
PAIR_KINDS = (("Two checkpoints", "checkpoint"), ("One checkpoint, two settings", "settings"))
CHOICES = (("left", "A is better"), ("right", "B is better"), ("tie", "Tie"), ("bothbad", "Both are bad"))
START = "Press **Show a pair** to start. Names are revealed after your vote."


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
                from workbench.store import Store
                from workbench.studio.promptsets import load_shipped

                self._store = Store.open(self.ctx.settings)
                load_shipped(self._store, [PROMPT_SET])
            return self._store

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

            checkpoints = self.ctx.checkpoint_choices()
            for _ in range(3):  # a random prompt may already have a pair this visitor rated
                if differ == "settings":
                    ensure_settings_pair(
                        self.ctx.router(), store, PROMPT_SET, checkpoints, ARENA_SETTINGS_PAIRS, choose=choose
                    )
                else:
                    ensure_pair(self.ctx.router(), store, PROMPT_SET, checkpoints, ARENA_SETTINGS, choose=choose)
                item = store.next_pair_for(rater, session=session, differ=differ, choose=choose)
                if item is not None:
                    break
        return item


def _visitor(
    ctx: AppContext, rater: str | None, request: gr.Request | None, profile: gr.OAuthProfile | None = None
) -> tuple[str | None, str, Visitor]:
    """The rater's name (None: anonymous), the voter id their ballots count under, and who they are.

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
        return check_rater(f"{username}@hf"), voter, who
    name = (rater or "").strip() if isinstance(rater, str) else ""
    if not name or not who.owner:
        return None, voter, who
    return check_rater(name), voter, who


def _buttons(interactive: bool) -> list:
    return [gr.update(interactive=interactive) for _ in CHOICES]


def make_next_fn(arena: Arena):
    """The function behind "Show a pair" and the arena_next endpoint."""

    def show_pair(
        rater: str, differ: str = "checkpoint", request: gr.Request = None, profile: gr.OAuthProfile | None = None
    ):
        try:
            if differ not in dict(PAIR_KINDS).values():
                raise WorkbenchError(f"Pairs differ in a checkpoint or in settings, not {differ!r}.")
            name, session, who = _visitor(arena.ctx, rater, request, profile)
            item = arena.next_pair(name, session, who, differ=differ)
        except WorkbenchError as exc:
            raise user_error(exc) from None
        if item is None:
            from workbench.ratings.pairs import arena_note

            status = (
                arena_note(arena.store(), arena.ctx.settings, differ) or "No pair is left for you to rate. Thank you!"
            )
            return None, "", "", "", status, "", *_buttons(False)
        system = f"[system: {item.a.system_prompt}]\n\n" if item.a.system_prompt else ""
        status = "Which answer is better? Names are revealed after your vote."
        return item, system + item.a.prompt, item.left.output, item.right.output, status, "", *_buttons(True)

    return show_pair


def make_vote_fn(arena: Arena, choice: str):
    """The function behind one vote button and its vote_<choice> endpoint."""

    def vote(item, reason: str, rater: str, request: gr.Request = None, profile: gr.OAuthProfile | None = None):
        if item is None:
            raise gr.Error("There is no pair to vote on: press Show a pair first.", print_exception=False)
        try:
            name, session, who = _visitor(arena.ctx, rater, request, profile)
            arena.ctx.take_vote(who)
            store = arena.store()
            if name is not None and name.endswith("@hf"):
                store.join_rater(session, name)  # their anonymous ballots from before they signed in are theirs
            kept = store.kept_choice(item, store.vote_on_pair(item, choice, rater=name, reason=reason, session=session))
        except WorkbenchError as exc:
            raise user_error(exc) from None
        status = vote_receipt(kept, item.left.checkpoint, item.right.checkpoint)
        if kept != choice:
            status += " (You had already judged this pair; your first vote is the one that counts.)"
        status += " Press **Show a pair** for the next one."
        return status, *_buttons(False)

    return vote


def build_arena_tab(ctx: AppContext) -> SimpleNamespace:
    """Lay out the Arena tab and wire its events (call inside a gr.Blocks / gr.Tab context)."""
    arena = Arena(ctx)
    gr.Markdown(
        "Two answers to the same prompt from two checkpoints, in random order. Pick the better one: "
        "your vote goes to the leaderboard.",
        elem_id="arena-intro",
    )
    with gr.Row():
        # Named raters only where the owner runs the app, or signed in with Hugging Face on a Space (the Space's
        # README needs `hf_oauth: true`); otherwise every visitor votes anonymously.
        if ctx.settings.space:
            gr.LoginButton(value="Sign in to vote under your name", scale=2)
        rater = gr.Textbox(
            label="Your name (optional)",
            max_length=64,
            scale=3,
            elem_id="arena-rater",
            visible=ctx.settings.admin_without_token,
        )
        differ = gr.Radio(
            list(PAIR_KINDS),
            value="checkpoint",
            label="Pairs",
            info="Two checkpoints, or one checkpoint under two generation settings (which setting is better).",
            scale=2,
            elem_id="arena-differ",
        )
        show = gr.Button("Show a pair", variant="primary", scale=1, elem_id="arena-next")
    prompt = gr.Textbox(label="Prompt", interactive=False, lines=2, max_lines=8, elem_id="arena-prompt")
    with gr.Row(equal_height=True):
        left = gr.Textbox(label="A", interactive=False, lines=10, max_lines=24, elem_id="arena-left")
        right = gr.Textbox(label="B", interactive=False, lines=10, max_lines=24, elem_id="arena-right")
    reason = gr.Textbox(label="Why? (optional)", max_length=2000, elem_id="arena-reason")
    with gr.Row():
        buttons = [
            gr.Button(label, interactive=False, elem_id=f"arena-vote-{choice}", variant="secondary")
            for choice, label in CHOICES
        ]
    status = gr.Markdown(START, elem_id="arena-status")
    item = gr.State(None)
    show.click(
        make_next_fn(arena),
        [rater, differ],
        [item, prompt, left, right, status, reason, *buttons],  # the reason box is emptied for the new pair
        api_name="arena_next",
        concurrency_limit=1,  # making a pair runs the model; one at a time
    )
    for button, (choice, _) in zip(buttons, CHOICES, strict=True):
        button.click(
            make_vote_fn(arena, choice),
            [item, reason, rater],
            [status, *buttons],
            api_name=f"vote_{choice}",
            concurrency_limit=None,
        )
    return SimpleNamespace(arena=arena, rater=rater, show=show, left=left, right=right, buttons=buttons, status=status)
