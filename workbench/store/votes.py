"""Human ratings in the store: blind pairwise votes and Likert scores, and picking the next item for a rater.

Every rating points at stored generations (a vote for one that does not exist is refused). A vote or score
sent twice with the same idempotency key is recorded once: the key is unique in the database, so even two
processes racing with one key leave one row. Items are served least-rated first, skipping what the rater
already did, with the left/right order drawn at random and recorded with the vote.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from workbench.errors import WorkbenchError
from workbench.store.generations import to_record
from workbench.store.records import (
    LikertItem,
    PairItem,
    Progress,
    anonymous_rater,
    check_key,
    check_rater,
    check_session,
    is_judge,
    is_visitor,
    judge_rater,
)
from workbench.store.schema import SIDES, WINNERS, Checkpoint, Generation, Likert, Vote
from workbench.store.visitors import servable

REASON_MAX = 2000
PAIR_KINDS = ("checkpoint", "settings")  # what the two outputs of a served pair differ in
_CANDIDATES = 200  # least-rated candidates fetched before the random draw among the least-rated


def _rater(rater: str | None, session: str | None) -> tuple[str, str | None]:
    session = check_session(session)
    if rater is None or (isinstance(rater, str) and not rater.strip()):
        if session is None:
            raise WorkbenchError("Give a rater name, or a session id to rate anonymously.")
        return anonymous_rater(session), session
    if is_judge(rater):  # the judge command's (or an import's) verdicts; rating screens refuse this form
        return judge_rater(rater), session
    return check_rater(rater), session


def _text(kind: str, value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    if len(value) > REASON_MAX:
        raise WorkbenchError(f"The {kind} is {len(value)} characters long; keep it under {REASON_MAX}.")
    return str(value).strip()


def _same_question(s: Session, generation_ids: Sequence[int]) -> bool:
    """Whether two generations answer the same user messages: the two sides of a multi-turn Arena battle each go on
    from their own earlier answers, so their contexts differ only in the assistant's turns."""
    rows = s.scalars(select(Generation.messages).where(Generation.id.in_(generation_ids))).all()
    asked = [[m for m in messages if m.get("role") != "assistant"] for messages in rows]
    return len(asked) == 2 and asked[0] == asked[1]


class RatingsMixin:
    """add_vote, add_likert, next_pair_for, next_likert_for, rater_progress, delete_vote, delete_rater."""

    def vote_on_pair(
        self, item: PairItem, choice: str, *, rater: str | None, reason: str | None = None, session: str | None = None
    ) -> int:
        """Record a rater's button ("left", "right", "tie", "bothbad") on a served pair, idempotently by its key."""
        return self.add_vote(
            item.a.id,
            item.b.id,
            item.winner_for(choice),
            rater=rater,
            shown_left=item.shown_left,
            reason=reason,
            session=session,
            key=item.key,
        )

    def add_vote(
        self,
        generation_a: int,
        generation_b: int,
        winner: str,
        *,
        rater: str | None,
        shown_left: str = "a",
        reason: str | None = None,
        session: str | None = None,
        key: str | None = None,
        created_at: float | None = None,
    ) -> int:
        """Record a pairwise vote and return its id; a rater has one ballot per pair, so a repeat (the same `key`,
        or the same rater and pair) records nothing and returns the id of the ballot that counts.

        Args:
            generation_a: Id of generation a.
            generation_b: Id of generation b (another generation of the same prompt).
            winner: "a", "b", "tie" or "bothbad" (use `PairItem.winner_for("left")` to map a button).
            rater: The rater's name; None to stay anonymous under `session`.
            shown_left: Which of a and b was shown on the left.
            reason: Optional free text from the rater (stored as is; escape it when showing it).
            session: The rater's browser session id.
            key: Idempotency key from the client (`PairItem.key`); a repeat is not recorded again.
            created_at: Epoch seconds (imports keep the original time); now when not given.
        """
        if winner not in WINNERS:
            raise WorkbenchError(f"The winner must be one of {', '.join(WINNERS)}, not {winner!r}.")
        if shown_left not in SIDES:
            raise WorkbenchError(f"shown_left must be 'a' or 'b', not {shown_left!r}.")
        if generation_a == generation_b:
            raise WorkbenchError("A pairwise vote needs two different generations.")
        rater, session = _rater(rater, session)
        if isinstance(generation_a, int) and isinstance(generation_b, int) and generation_a > generation_b:
            # A pair is stored in id order, so that one ballot per rater and pair can be a unique index.
            generation_a, generation_b = generation_b, generation_a
            winner = {"a": "b", "b": "a"}.get(winner, winner)
            shown_left = "b" if shown_left == "a" else "a"
        row = Vote(
            generation_a_id=generation_a,
            generation_b_id=generation_b,
            winner=winner,
            shown_left=shown_left,
            reason=_text("reason", reason),
            rater=rater,
            session=session,
            client_key=check_key(key),
        )
        if created_at is not None:
            row.created_at = float(created_at)
        return self._insert_once(row, Vote, [generation_a, generation_b])

    def add_likert(
        self,
        generation: int,
        score: int,
        *,
        rater: str | None,
        comment: str | None = None,
        session: str | None = None,
        key: str | None = None,
        created_at: float | None = None,
    ) -> int:
        """Record a 1-to-5 score of one generation; returns its id (the first one's id on a repeated key)."""
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise WorkbenchError(f"A Likert score must be a whole number from 1 to 5, not {score!r}.")
        rater, session = _rater(rater, session)
        row = Likert(
            generation_id=generation,
            score=score,
            comment=_text("comment", comment),
            rater=rater,
            session=session,
            client_key=check_key(key),
        )
        if created_at is not None:
            row.created_at = float(created_at)
        return self._insert_once(row, Likert, [generation])

    def _insert_once(self, row: Vote | Likert, table: type, generation_ids: Sequence[int]) -> int:
        for gid in generation_ids:
            if isinstance(gid, bool) or not isinstance(gid, int):
                raise WorkbenchError(f"A generation id must be a whole number, not {gid!r}.")
        try:
            with self._write() as s:
                seen = self._ballot(s, row, table)
                if seen is not None:
                    return seen
                query = select(Generation.id, Generation.prompt_hash).where(Generation.id.in_(generation_ids))
                found = dict(s.execute(query).all())
                missing = [g for g in generation_ids if g not in found]
                if missing:
                    raise WorkbenchError(
                        f"There is no generation with id {missing[0]} in the store; nothing was recorded."
                    )
                if len(set(found.values())) > 1 and not _same_question(s, generation_ids):
                    raise WorkbenchError("Both generations of a pairwise vote must answer the same prompt.")
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            # Two submissions of one ballot raced (PostgreSQL lets both past the read): the other one won.
            with self._read() as s:
                seen = self._ballot(s, row, table)
            if seen is None:
                raise
            return seen

    @staticmethod
    def _ballot(session: Session, row: Vote | Likert, table: type) -> int | None:
        """The id of the stored ballot `row` repeats: the same client key, the same rater on the same pair (or
        generation, for a Likert score), or, for an identity a visitor cannot type (anonymous, or a Hugging Face
        login), the same voter (`session`, the keyed id of their address) under either identity: signing in does
        not give a second ballot beside the anonymous one."""
        if row.client_key is not None:
            seen = session.scalar(select(table.id).where(table.client_key == row.client_key))
            if seen is not None:
                return seen
        if table is Vote:
            same = (Vote.generation_a_id == row.generation_a_id, Vote.generation_b_id == row.generation_b_id)
        else:
            same = (Likert.generation_id == row.generation_id,)
        seen = session.scalar(select(table.id).where(table.rater == row.rater, *same))
        if seen is None and row.session and is_visitor(row.rater):
            person = or_(table.rater.like("anon-%"), table.rater.like("%@hf"))
            seen = session.scalar(select(table.id).where(table.session == row.session, person, *same).limit(1))
        return seen

    def join_rater(self, session: str, rater: str) -> int:
        """Count the anonymous ballots of voter `session` under `rater` (their Hugging Face login) from now on:
        one person is one rater. Returns how many ballots moved; a pair both identities judged keeps the earlier."""
        session, rater = check_session(session), check_rater(rater)
        if session is None:
            return 0
        anon = anonymous_rater(session)
        moved = 0
        with self._write() as s:
            mine = select(Vote.generation_a_id, Vote.generation_b_id, Vote.id, Vote.created_at)
            named = {(a, b): (i, t) for a, b, i, t in s.execute(mine.where(Vote.rater == rater))}
            for vote in s.scalars(select(Vote).where(Vote.rater == anon, Vote.session == session)):
                twin = named.get((vote.generation_a_id, vote.generation_b_id))
                if twin is None:
                    vote.rater = rater
                    moved += 1
                elif twin[1] > vote.created_at:  # the anonymous ballot came first: it is the one that counts
                    s.execute(delete(Vote).where(Vote.id == twin[0]))
                    s.flush()
                    vote.rater = rater
                    moved += 1
                else:
                    s.delete(vote)
        return moved

    def kept_choice(self, item: PairItem, vote_id: int) -> str:
        """The button ("left", "right", "tie", "bothbad") of the ballot that counts for a served pair, which is the
        first one when the rater voted on this pair before: the receipt shows what was kept."""
        with self._read() as s:
            winner = s.scalar(select(Vote.winner).where(Vote.id == vote_id))
        if winner in ("tie", "bothbad") or winner is None:
            return winner or "tie"
        return "left" if winner == item.shown_left else "right"

    # --- serving items ------------------------------------------------------------------------------------

    def _pair_query(
        self,
        rater: str,
        checkpoints: Sequence[str] | None,
        same_settings: bool,
        differ: str = "checkpoint",
        *,
        columns: str = "rows",
    ):
        """The pairs on offer to `rater`: their generations' ids with the votes they have (`columns="rows"`), or the
        distinct contestants they put side by side (`columns="contestants"`: checkpoint names, or settings hashes
        with `differ="settings"`)."""
        ga, gb = aliased(Generation), aliased(Generation)
        ca, cb = aliased(Checkpoint), aliased(Checkpoint)
        # A vote stores its pair in id order (`add_vote`; migration 0005 made the old ones so) and ga.id < gb.id
        # here, so one spelling finds it and both lookups use an index: with the reverse spelling OR-ed in,
        # SQLite scanned all of an active rater's votes for every candidate pair (0.5 s at 100,000 votes).
        on_pair = and_(Vote.generation_a_id == ga.id, Vote.generation_b_id == gb.id)
        mine = select(Vote.id).where(on_pair, Vote.rater == rater).correlate(ga, gb).exists()
        conditions = [
            ga.prompt_hash == gb.prompt_hash,
            ga.id < gb.id,
            ga.output != "",
            gb.output != "",
            ~mine,
            servable(ga),  # visitors' own prompts are not served to others (workbench.store.visitors)
            servable(gb),
        ]
        if differ == "settings":  # preference per setting: one checkpoint's outputs under two settings
            conditions += [ga.checkpoint_id == gb.checkpoint_id, ga.settings_hash != gb.settings_hash]
        else:
            conditions.append(ga.checkpoint_id != gb.checkpoint_id)
            if same_settings:
                conditions.append(ga.settings_hash == gb.settings_hash)
        if columns == "contestants":
            sides = (ga.settings_hash, gb.settings_hash) if differ == "settings" else (ca.name, cb.name)
            chosen = select(*sides).distinct()
        else:  # ids and vote counts only: the two served rows are read afterwards (200 full rows cost 10-20 ms)
            n_votes = select(func.count(Vote.id)).where(on_pair).correlate(ga, gb).scalar_subquery()
            chosen = select(ga.id.label("a"), gb.id.label("b"), n_votes.label("n"))
        query = (
            chosen.select_from(ga)
            .join(gb, and_(*conditions))
            .join(ca, ca.id == ga.checkpoint_id)
            .join(cb, cb.id == gb.checkpoint_id)
        )
        if checkpoints:
            names = [str(c) for c in checkpoints]
            query = query.where(ca.name.in_(names), cb.name.in_(names))
        return query, (ga, gb, ca, cb)

    def _offered(self, s: Session, rater: str, checkpoints, same_settings: bool, differ: str):
        """The contestant pairs on offer to `rater` (names sorted within each pair), and the settings hashes behind
        each settings label (for `differ="settings"`)."""
        query, _ = self._pair_query(rater, checkpoints, same_settings, differ, columns="contestants")
        rows = s.execute(query).all()
        hashes: dict[str, set[str]] = {}
        if differ == "settings":
            labels = self._names_and_labels(s)[1]
            for row in rows:
                for h in row:
                    hashes.setdefault(labels.get(h, h), set()).add(h)
            rows = [(labels.get(a, a), labels.get(b, b)) for a, b in rows]
        return sorted({tuple(sorted(row)) for row in rows if row[0] != row[1]}), hashes

    def next_pair_for(
        self,
        rater: str | None,
        *,
        session: str | None = None,
        checkpoints: Sequence[str] | None = None,
        same_settings: bool = True,
        differ: str = "checkpoint",
        rng: random.Random | None = None,
        choose: Callable[[list[tuple[str, str]]], tuple[str, str] | None] | None = None,
    ) -> PairItem | None:
        """The next blind pair for this rater, or None when they have rated every pair on offer.

        A pair is two non-empty generations of the same prompt (and, by default, the same settings) from
        two different checkpoints, that this rater has not voted on; the least-voted pairs come first.
        With `differ="settings"` it is two outputs of one checkpoint for the same prompt under two different
        settings instead (which setting people prefer). The left/right order is drawn with `rng` and must be sent
        back as `shown_left` with the vote.

        `choose` picks which two contestants to show (what `workbench.ratings.pairs` passes: the sampler): it is
        given the contestant pairs on offer to this rater (checkpoint names, or settings labels with
        `differ="settings"`; sorted within each pair) and returns one of them, or None to serve nothing; the
        least-voted of that pair's prompts is served.
        """
        if differ not in PAIR_KINDS:
            raise WorkbenchError(f"Pairs differ in {' or '.join(PAIR_KINDS)}, not {differ!r}.")
        rater, _ = _rater(rater, session)
        rng = rng or random.Random()
        query, (ga, gb, ca, cb) = self._pair_query(rater, checkpoints, same_settings, differ)
        with self._read() as s:
            if choose is not None:
                offered, hashes = self._offered(s, rater, checkpoints, same_settings, differ)
                picked = choose(offered) if offered else None
                if picked is None:
                    return None
                x, y = picked
                if differ == "settings":
                    hx, hy = sorted(hashes[x]), sorted(hashes[y])
                    sides = (ga.settings_hash.in_(hx) & gb.settings_hash.in_(hy)) | (
                        ga.settings_hash.in_(hy) & gb.settings_hash.in_(hx)
                    )
                else:
                    sides = ((ca.name == x) & (cb.name == y)) | ((ca.name == y) & (cb.name == x))
                query = query.where(sides)
            rows = s.execute(query.order_by("n").limit(_CANDIDATES)).all()
            if not rows:
                return None
            picked = rng.choice([r for r in rows if r.n == rows[0].n])
            query = select(Generation, Checkpoint.name).join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            found = {g.id: to_record(g, name) for g, name in s.execute(query.where(Generation.id.in_(picked[:2])))}
        return PairItem(a=found[picked.a], b=found[picked.b], shown_left=rng.choice(SIDES), key=uuid.uuid4().hex)

    def _likert_query(self, rater: str, checkpoints: Sequence[str] | None):
        n_scores = select(func.count(Likert.id)).where(Likert.generation_id == Generation.id).scalar_subquery()
        mine = select(Likert.id).where(Likert.generation_id == Generation.id, Likert.rater == rater).exists()
        query = (
            select(Generation, Checkpoint.name, n_scores.label("n"))
            .join(Checkpoint, Checkpoint.id == Generation.checkpoint_id)
            .where(Generation.output != "", ~mine, servable(Generation))
        )
        if checkpoints:
            query = query.where(Checkpoint.name.in_([str(c) for c in checkpoints]))
        return query

    def next_likert_for(
        self,
        rater: str | None,
        *,
        session: str | None = None,
        checkpoints: Sequence[str] | None = None,
        rng: random.Random | None = None,
    ) -> LikertItem | None:
        """The next output for this rater to score 1 to 5 (least-scored first), or None when none is left."""
        rater, _ = _rater(rater, session)
        rng = rng or random.Random()
        with self._read() as s:
            rows = s.execute(self._likert_query(rater, checkpoints).order_by("n").limit(_CANDIDATES)).all()
        if not rows:
            return None
        g, name, _ = rng.choice([r for r in rows if r.n == rows[0].n])
        return LikertItem(generation=to_record(g, name), key=uuid.uuid4().hex)

    def rater_progress(
        self, rater: str | None, *, session: str | None = None, checkpoints: Sequence[str] | None = None
    ) -> Progress:
        """How many votes and scores this rater gave, and how many pairs and outputs are left for them."""
        rater, _ = _rater(rater, session)
        with self._read() as s:
            votes = s.scalar(select(func.count(Vote.id)).where(Vote.rater == rater))
            likert = s.scalar(select(func.count(Likert.id)).where(Likert.rater == rater))
            pairs_left = s.scalar(
                select(func.count()).select_from(self._pair_query(rater, checkpoints, True)[0].subquery())
            )
            likert_left = s.scalar(select(func.count()).select_from(self._likert_query(rater, checkpoints).subquery()))
        return Progress(rater=rater, votes=votes, likert=likert, pairs_left=pairs_left, likert_left=likert_left)

    def raters(self) -> list[str]:
        """Every rater name that gave a vote or a score, sorted."""
        with self._read() as s:
            names = set(s.scalars(select(Vote.rater).distinct())) | set(s.scalars(select(Likert.rater).distinct()))
        return sorted(names)

    # --- deleting -----------------------------------------------------------------------------------------

    def delete_vote(self, vote_id: int, *, token: str | None = None) -> None:
        """Delete one pairwise vote (admin)."""
        self.check_admin(token)
        with self._write() as s:
            if s.execute(delete(Vote).where(Vote.id == vote_id)).rowcount == 0:
                raise WorkbenchError(f"There is no vote with id {vote_id!r}.")

    def delete_likert(self, likert_id: int, *, token: str | None = None) -> None:
        """Delete one Likert score (admin)."""
        self.check_admin(token)
        with self._write() as s:
            if s.execute(delete(Likert).where(Likert.id == likert_id)).rowcount == 0:
                raise WorkbenchError(f"There is no Likert score with id {likert_id!r}.")

    def delete_rater(self, rater: str, *, token: str | None = None) -> int:
        """Delete every vote and score of one rater (admin); returns how many ratings went."""
        self.check_admin(token)
        rater = check_rater(rater)
        with self._write() as s:
            n = s.execute(delete(Vote).where(Vote.rater == rater)).rowcount
            return n + s.execute(delete(Likert).where(Likert.rater == rater)).rowcount
