"""The store's foundation: the engine, read and write transactions, the admin check, checkpoints and prompt sets.

`StoreBase` is what the per-concern mixins (generations, ratings, results, export) build on; use the
composed `workbench.store.Store`, not this class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from workbench.access import SHELL, Caller, Policy
from workbench.errors import WorkbenchError
from workbench.store import db
from workbench.store.records import check_name
from workbench.store.schema import Checkpoint, EvalResult, Generation, Likert, Prompt, PromptSet, Vote

if TYPE_CHECKING:
    from workbench.config import Settings


@contextmanager
def _reachable() -> Iterator[None]:
    """Turn a database that cannot be reached (down, timed out, locked) into one sentence; nothing was written.

    Integrity errors pass through: they are answers, which the callers handle.
    """
    try:
        yield
    except IntegrityError:
        raise
    except (OperationalError, InterfaceError) as exc:
        raise WorkbenchError(
            "The database did not answer, so nothing was recorded: please try again in a moment."
        ) from exc


class StoreBase:
    """Engine, transactions and the small tables (checkpoints, prompt sets)."""

    def __init__(
        self,
        url: str,
        *,
        admin_token: str | None = None,
        access: Policy | None = None,
        migrate: bool = True,
    ) -> None:
        """Connect to `url` and bring its schema up to date (created on first use, upgraded in place).

        Args:
            url: SQLAlchemy URL: `sqlite:///path/file.db` or `postgresql+psycopg://user@host:port/db`.
            admin_token: When set, exports, imports and deletions need this token (shorthand for `access`).
            access: Who may export, import and delete (`Settings.access`); by default this machine's callers, or
                whoever gives `admin_token` when one is set.
            migrate: Upgrade the schema on open (only tests of old revisions turn this off).
        """
        self.url = url
        self.access = access or Policy(admin_token or None, "local")
        self.engine = db.make_engine(url)
        self._writer = db.writer(self.engine)
        if migrate:
            with _reachable():
                db.migrate(self.engine)

    @classmethod
    def open(cls, settings: Settings) -> Self:
        """The store named by `settings.db_url`, with the settings' admin token."""
        return cls(settings.db_url, access=settings.access)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with _reachable(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with _reachable(), Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def check_admin(self, token: str | None, who: Caller = SHELL) -> None:
        """Raise WorkbenchError unless `who` may take an admin action with `token` (see `workbench.access`)."""
        self.access.check(token, who)

    # --- checkpoints -------------------------------------------------------------------------------------

    def upsert_checkpoint(
        self,
        name: str,
        *,
        base_model: str | None = None,
        step: int | None = None,
        path: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """Create the checkpoint or update the fields given (None leaves a field as it is); returns its id."""
        name = check_name("checkpoint", name)
        for attempt in range(2):
            try:
                with self._write() as s:
                    row = s.scalar(select(Checkpoint).where(Checkpoint.name == name))
                    if row is None:
                        row = Checkpoint(name=name)
                        s.add(row)
                    for key, value in (("base_model", base_model), ("step", step), ("path", path)):
                        if value is not None:
                            setattr(row, key, value)
                    if metadata is not None:
                        row.meta = {**(row.meta or {}), **dict(metadata)}
                    s.flush()
                    return row.id
            except IntegrityError:
                if attempt:  # another writer created it between our read and write (PostgreSQL): update it
                    raise
        raise AssertionError("unreachable")

    def _add_once(
        self, row: Any, repeated: Callable[[Session, Any], int | None], check: Callable[[Session], None]
    ) -> int:
        """Add `row` (a client-keyed, append-only row: feedback, a correction) and return its id, or the id of the row
        `repeated` finds already recorded (a retried request). `check(session)` raises the sentence of a row that
        may not be added, inside the same transaction. A twin that raced in from another request (PostgreSQL's
        unique key) counts as the one recorded."""
        try:
            with self._write() as s:
                seen = repeated(s, row)
                if seen is not None:
                    return seen
                check(s)
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            with self._read() as s:
                seen = repeated(s, row)
            if seen is None:
                raise
            return seen

    def _checkpoint_id(self, s: Session, name: str, *, create: bool = False, base_model: str | None = None) -> int:
        name = check_name("checkpoint", name)
        found = s.scalar(select(Checkpoint.id).where(Checkpoint.name == name))
        if found is not None:
            return found
        if not create:
            raise WorkbenchError(f"There is no checkpoint named {name!r} in the store.")
        try:
            with s.begin_nested():
                row = Checkpoint(name=name, base_model=base_model)
                s.add(row)
            return row.id
        except IntegrityError:  # a concurrent writer created it first (PostgreSQL): use theirs
            return s.scalar(select(Checkpoint.id).where(Checkpoint.name == name))

    def _insert_for_checkpoint(
        self, row: Any, checkpoint: str, base_model: str | None, created_at: float | None
    ) -> int:
        """Insert a row that belongs to a checkpoint (created on first use); return the row's id."""
        if created_at is not None:
            row.created_at = float(created_at)
        with self._write() as s:
            row.checkpoint_id = self._checkpoint_id(s, checkpoint, create=True, base_model=base_model)
            s.add(row)
            s.flush()
            return row.id

    def checkpoints(self):
        """Every checkpoint as a DataFrame: id, name, base_model, step, path, metadata, created_at, generations."""
        import pandas as pd

        counts = select(Generation.checkpoint_id, func.count().label("n")).group_by(Generation.checkpoint_id).subquery()
        query = (
            select(Checkpoint, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.checkpoint_id == Checkpoint.id)
            .order_by(Checkpoint.name)
        )
        with self._read() as s:
            rows = [
                {
                    "id": c.id,
                    "name": c.name,
                    "base_model": c.base_model,
                    "step": c.step,
                    "path": c.path,
                    "metadata": c.meta or {},
                    "created_at": c.created_at,
                    "generations": n,
                }
                for c, n in s.execute(query)
            ]
        columns = ["id", "name", "base_model", "step", "path", "metadata", "created_at", "generations"]
        return pd.DataFrame(rows, columns=columns)

    def delete_checkpoint(self, name: str, *, token: str | None = None) -> int:
        """Delete a checkpoint with its generations, their ratings and its evaluation results (admin).

        Returns the number of generations deleted.
        """
        self.check_admin(token)
        with self._write() as s:
            cid = self._checkpoint_id(s, name)
            gens = select(Generation.id).where(Generation.checkpoint_id == cid)
            s.execute(delete(Vote).where(Vote.generation_a_id.in_(gens) | Vote.generation_b_id.in_(gens)))
            s.execute(delete(Likert).where(Likert.generation_id.in_(gens)))
            from workbench.store.schema import EvalExample

            results = select(EvalResult.id).where(EvalResult.checkpoint_id == cid)
            s.execute(delete(EvalExample).where(EvalExample.result_id.in_(results)))
            s.execute(delete(EvalResult).where(EvalResult.checkpoint_id == cid))
            n = s.execute(delete(Generation).where(Generation.checkpoint_id == cid)).rowcount
            s.execute(delete(Checkpoint).where(Checkpoint.id == cid))
            return n

    # --- prompt sets -------------------------------------------------------------------------------------

    def add_prompt_set(
        self, name: str, prompts: Sequence[str | Mapping[str, Any]], *, description: str | None = None
    ) -> int:
        """Create a prompt set; each prompt is a string or a dict with `text` (or `messages`), and optional
        `system_prompt`, `reference`, `metadata`. Returns its id; a name in use is refused."""
        name = check_name("prompt set", name)
        rows = [_prompt_row(i, p) for i, p in enumerate(prompts)]
        if not rows:
            raise WorkbenchError(f"The prompt set {name!r} has no prompts.")
        try:
            with self._write() as s:
                pset = PromptSet(name=name, description=description)
                s.add(pset)
                s.flush()
                s.add_all(Prompt(prompt_set_id=pset.id, **row) for row in rows)
                return pset.id
        except IntegrityError:
            raise WorkbenchError(f"A prompt set named {name!r} already exists.") from None

    def prompt_sets(self) -> list[dict[str, Any]]:
        """Every prompt set: id, name, description, size."""
        query = (
            select(PromptSet, func.count(Prompt.id))
            .outerjoin(Prompt, Prompt.prompt_set_id == PromptSet.id)
            .group_by(PromptSet.id)
            .order_by(PromptSet.name)
        )
        with self._read() as s:
            return [{"id": p.id, "name": p.name, "description": p.description, "size": n} for p, n in s.execute(query)]

    def prompts(self, prompt_set: str) -> list[dict[str, Any]]:
        """The prompts of a set, in order: id, position, text, messages, system_prompt, reference, metadata."""
        with self._read() as s:
            set_id = s.scalar(select(PromptSet.id).where(PromptSet.name == prompt_set))
            if set_id is None:
                raise WorkbenchError(f"There is no prompt set named {prompt_set!r}.")
            rows = s.scalars(select(Prompt).where(Prompt.prompt_set_id == set_id).order_by(Prompt.position))
            return [
                {
                    "id": p.id,
                    "position": p.position,
                    "text": p.text,
                    "messages": p.messages,
                    "system_prompt": p.system_prompt,
                    "reference": p.reference,
                    "metadata": p.meta or {},
                }
                for p in rows
            ]

    def delete_prompt_set(self, name: str, *, token: str | None = None) -> None:
        """Delete a prompt set and its prompts (admin); generations made from them are kept, except for the set of
        visitors' prompts waiting for approval (`workbench.store.visitors`): deleting it rejects them, and the
        outputs made from them go too (kept without their prompt set, they would be served to raters)."""
        from workbench.store.visitors import VISITOR_PROMPTS

        self.check_admin(token)
        with self._write() as s:
            set_id = s.scalar(select(PromptSet.id).where(PromptSet.name == name))
            if set_id is None:
                raise WorkbenchError(f"There is no prompt set named {name!r}.")
            prompt_ids = select(Prompt.id).where(Prompt.prompt_set_id == set_id)
            if name == VISITOR_PROMPTS:
                gens = select(Generation.id).where(Generation.prompt_id.in_(prompt_ids))
                s.execute(delete(Vote).where(Vote.generation_a_id.in_(gens) | Vote.generation_b_id.in_(gens)))
                s.execute(delete(Likert).where(Likert.generation_id.in_(gens)))
                s.execute(delete(Generation).where(Generation.prompt_id.in_(prompt_ids)))
            s.execute(Generation.__table__.update().where(Generation.prompt_id.in_(prompt_ids)).values(prompt_id=None))
            s.execute(delete(Prompt).where(Prompt.prompt_set_id == set_id))
            s.execute(delete(PromptSet).where(PromptSet.id == set_id))


def _prompt_row(position: int, prompt: str | Mapping[str, Any]) -> dict[str, Any]:
    from workbench.store.records import normalize_prompt

    if isinstance(prompt, str):
        prompt = {"text": prompt}
    if not isinstance(prompt, Mapping):
        raise WorkbenchError(f"Prompt {position + 1} must be text or an object with a text.")
    messages = prompt.get("messages")
    try:
        text, _, _ = normalize_prompt(messages if messages else prompt.get("text") or "", None)
    except WorkbenchError as exc:
        raise WorkbenchError(f"Prompt {position + 1}: {exc}") from None
    return {
        "position": position,
        "text": text,
        "messages": list(messages) if messages else None,
        "system_prompt": prompt.get("system_prompt"),
        "reference": prompt.get("reference"),
        "meta": dict(prompt.get("metadata") or {}) or None,
    }
