"""Prompts visitors typed: kept in one reserved prompt set, never served to other raters until the owner approves.

A visitor of a public dashboard may type anything into Compare; its outputs are stored (they are re-shown to
whoever asks the same), but serving them to other people as a blind pair or an output to score would publish
the visitor's text to everyone. So a visitor's typed prompt is recorded in the prompt set `visitor-prompts`
and its generations point at it; the queries that serve items (`RatingsMixin.next_pair_for`,
`next_likert_for`) take only generations that are `servable`. The owner reviews the set and approves it (renamed,
it becomes an ordinary prompt set and its outputs are served) or rejects it (deleted with the outputs made from
it), both admin actions:

    python -m workbench prompts --show visitor-prompts
    python -m workbench prompts --approve visitor-prompts-dec-3     # or: --reject

The owner's own typed prompts have no prompt set and are served as before. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from workbench.errors import WorkbenchError
from workbench.store.records import check_name, normalize_prompt
from workbench.store.schema import Generation, Prompt, PromptSet

VISITOR_PROMPTS = "visitor-prompts"
_DESCRIPTION = (
    "Prompts visitors typed on the dashboard: not served to other raters until approved "
    "(python -m workbench prompts --approve NAME, or --reject)."
)


def servable(generation):
    """SQL condition: a generation (the table or an alias of it) may be served to any rater. Not an output of a
    visitor's own prompt in the app (an Arena battle or a chat reply: `origin` is set), which only that visitor and
    the owner see, nor of a prompt a visitor typed on the dashboard that is still waiting for the owner's approval."""
    waiting = (
        select(Prompt.id).join(PromptSet, PromptSet.id == Prompt.prompt_set_id).where(PromptSet.name == VISITOR_PROMPTS)
    )
    return and_(generation.origin.is_(None), or_(generation.prompt_id.is_(None), generation.prompt_id.not_in(waiting)))


class VisitorPromptsMixin:
    """visitor_prompt, approve_visitor_prompts, reviewed (and deleting the set through `delete_prompt_set` rejects
    it)."""

    def reviewed(self, generation_ids: Iterable[int]) -> set[int]:
        """Which of these generations answer a prompt the owner gave or approved (`servable`): not a visitor's typed
        prompt in the Arena or the chat, nor one still waiting for approval."""
        ids = sorted({int(i) for i in generation_ids})
        found: set[int] = set()
        with self._read() as s:
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                found |= set(s.scalars(select(Generation.id).where(Generation.id.in_(chunk), servable(Generation))))
        return found

    def visitor_prompt(self, text: str, system_prompt: str | None = None) -> int:
        """The id of a visitor's typed prompt in the set waiting for approval (added when it is not there yet);
        give it as `prompt_id` to the generations that answer it."""
        text, _, system = normalize_prompt(text, system_prompt)
        for attempt in range(3):  # another process may add the set or a prompt between our read and our write
            try:
                with self._write() as s:
                    set_id = s.scalar(select(PromptSet.id).where(PromptSet.name == VISITOR_PROMPTS))
                    if set_id is None:
                        pset = PromptSet(name=VISITOR_PROMPTS, description=_DESCRIPTION)
                        s.add(pset)
                        s.flush()
                        set_id = pset.id
                    same = (Prompt.prompt_set_id == set_id, Prompt.text == text)
                    same += (Prompt.system_prompt.is_(None) if system is None else Prompt.system_prompt == system,)
                    found = s.scalar(select(Prompt.id).where(*same).limit(1))
                    if found is not None:
                        return found
                    position = s.scalar(select(func.coalesce(func.max(Prompt.position) + 1, 0)).where(same[0]))
                    row = Prompt(prompt_set_id=set_id, position=position, text=text, system_prompt=system)
                    s.add(row)
                    s.flush()
                    return row.id
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def approve_visitor_prompts(self, name: str, *, token: str | None = None) -> int:
        """Approve every prompt visitors typed so far (admin): the set is renamed `name`, an ordinary prompt set,
        and the outputs made from it are served to raters from now on; new typed prompts start a new waiting set.
        Returns how many prompts were approved."""
        self.check_admin(token)
        name = check_name("prompt set", name)
        if name == VISITOR_PROMPTS:
            raise WorkbenchError(f"Give the approved prompts a name other than {VISITOR_PROMPTS!r}.")
        try:
            with self._write() as s:
                pset = s.scalar(select(PromptSet).where(PromptSet.name == VISITOR_PROMPTS))
                if pset is None:
                    raise WorkbenchError("No prompts typed by visitors are waiting for approval.")
                pset.name, pset.description = name, f"Prompts visitors typed on the dashboard, approved as {name!r}."
                s.flush()
                return s.scalar(select(func.count(Prompt.id)).where(Prompt.prompt_set_id == pset.id))
        except IntegrityError:
            raise WorkbenchError(f"A prompt set named {name!r} already exists: choose another name.") from None
