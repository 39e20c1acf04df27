"""Many raters at once lose no vote: 24 concurrent raters as threads (one shared Store, like one server) and as
processes (a Store each, like several server workers), on SQLite and on a real PostgreSQL.

Each rater votes once on each of eight pairs with idempotency keys, double-clicks its first vote (same key
twice), votes on its first pair again under a new key (one ballot per rater and pair), and all raters race to
send one vote under a single shared key. The table must then hold exactly one row per distinct key that
counts: none lost, none doubled.

Run: .venv/bin/python -m pytest -q tests/store/test_store_concurrency.py
"""

from __future__ import annotations

import multiprocessing
import random
import threading

from workbench.store import Store

RATERS = 24
VOTES_EACH = 8
SHARED_KEY = "shared-key-0000001"


def seed(url: str) -> list[tuple[int, int]]:
    """Four checkpoints answering three prompts; returns the pairs of generation ids raters vote on."""
    with Store(url) as store:
        ids = {
            (ck, p): store.add_generation(ck, p, f"{ck}: {p}", None)
            for ck in ("c1", "c2", "c3", "c4")
            for p in ("p1", "p2", "p3")
        }
    return [(ids["c1", p], ids[ck, p]) for p in ("p1", "p2", "p3") for ck in ("c2", "c3", "c4")]


def rate(store: Store, rater: str, pairs: list[tuple[int, int]], start: threading.Barrier | None = None) -> None:
    """One rater's session: VOTES_EACH votes, a double click, and a race on the shared key."""
    rng = random.Random(rater)
    if start is not None:
        start.wait()
    mine = rng.sample(pairs[1:], VOTES_EACH)
    for i, (a, b) in enumerate(mine):
        vote = {"rater": rater, "shown_left": rng.choice("ab"), "key": f"{rater}-vote-{i:03d}"}
        first = store.add_vote(a, b, rng.choice(["a", "b", "tie", "bothbad"]), **vote)
        if i == 0:
            assert store.add_vote(a, b, "a", **vote) == first  # a double click
            again = store.add_vote(b, a, "b", rater=rater, key=f"{rater}-again")  # the same pair, another ballot
            assert again == first
    a, b = pairs[0]
    store.add_vote(a, b, "tie", rater=rater, key=SHARED_KEY)


def _process_main(url: str, rater: str, pairs: list[tuple[int, int]], start) -> None:
    with Store(url) as store:
        rate(store, rater, pairs, start)


def check_rows(url: str) -> None:
    with Store(url) as store:
        votes = store.votes()
    expected = {f"r{n:02d}-vote-{i:03d}" for n in range(RATERS) for i in range(VOTES_EACH)} | {SHARED_KEY}
    assert len(votes) == len(expected) == RATERS * VOTES_EACH + 1
    assert set(votes["key"]) == expected
    per_rater = votes[votes["key"] != SHARED_KEY].groupby("rater").size()
    assert (per_rater == VOTES_EACH).all() and len(per_rater) == RATERS


def test_concurrent_raters_as_threads_lose_no_vote(db_url):
    pairs = seed(db_url)
    start = threading.Barrier(RATERS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            rate(store, f"r{n:02d}", pairs, start)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with Store(db_url) as store:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(RATERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors[0]
    check_rows(db_url)


def test_concurrent_raters_as_processes_lose_no_vote(db_url):
    pairs = seed(db_url)  # the parent's engine is disposed: children never share its connections
    ctx = multiprocessing.get_context("fork")  # fast on 2 cores; each child opens its own Store
    start = ctx.Barrier(RATERS)
    procs = [ctx.Process(target=_process_main, args=(db_url, f"r{n:02d}", pairs, start)) for n in range(RATERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * RATERS
    check_rows(db_url)
