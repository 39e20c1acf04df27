"""An open Arena battle without a model: contestants drawn, answers released in lock-step, turns stored, the vote.

Run: .venv/bin/python -m pytest -q tests/studio/test_battle.py
The replies are real `Reply` objects fed by threads the way a backend feeds them (no model is loaded); the store is
a real SQLite file. Covers: two checkpoints or, with only one, two settings (and the note why); lock-step release
(neither side's speed shows); a failed answer voids the turn; two turns stored with each side's own history; the
vote on the last turn; battle outputs never served to other raters; the receipt naming the settings that differed.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router
from workbench.generation.settings import GenerationSettings, ReplyStats
from workbench.generation.streaming import Reply
from workbench.store import Store
from workbench.studio import battle as battles
from workbench.training.votes import VoteFilters, vote_pairs
from workbench.views.markup import vote_receipt

BASE = GenerationSettings(max_new_tokens=16)


def reply(chunks: list[str], delay_s: float, *, error: Exception | None = None, start_s: float = 0.0) -> Reply:
    """A Reply fed by a thread the way a backend feeds it: a token every `delay_s`, then the final stats."""
    made = Reply(ReplyStats(model="m", adapter=None, backend="test"), (), time.perf_counter())

    def feed() -> None:
        time.sleep(start_s)
        made.begin()
        for chunk in chunks:
            made.count_tokens()
            if made.push(chunk):
                break
            time.sleep(delay_s)
        made.finish_stats(len(chunks), "eos")
        made.close(error)

    threading.Thread(target=feed, daemon=True).start()
    return made


def test_two_checkpoints_battle_under_the_same_settings():
    battle = battles.new_battle(["base", "run-a", "run-b"], "checkpoint", BASE, random.Random(3))
    assert battle.differ == "checkpoint" and battle.note == ""
    assert battle.left.checkpoint != battle.right.checkpoint and battle.left.settings == battle.right.settings


def test_one_checkpoint_battles_under_two_settings_and_says_why():
    battle = battles.new_battle(["base"], "checkpoint", BASE, random.Random(0))
    assert battle.differ == "settings" and battle.note == battles.ONE_CHECKPOINT
    assert battle.left.checkpoint == battle.right.checkpoint == "base"
    temperatures = {battle.left.settings.temperature, battle.right.settings.temperature}
    assert len(temperatures) == 2 and temperatures <= set(battles.SETTINGS_LADDER)
    assert battle.left.settings.max_new_tokens == 16  # only the temperature differs
    with pytest.raises(WorkbenchError, match="differ in a checkpoint or in settings"):
        battles.new_battle(["base"], "speed", BASE)


def test_an_adapters_settings_battles_differ_in_its_strength():
    """How strongly to apply an adapter is the question a settings pair asks of one; the base and a remote model
    (whose adapters its server applies as trained) are asked about the temperature."""
    battle = battles.new_battle(["my-run"], "settings", BASE, random.Random(0))
    strengths = {battle.left.settings.adapter_strength, battle.right.settings.adapter_strength}
    assert len(strengths) == 2 and strengths <= set(battles.STRENGTH_LADDER)
    assert battle.left.settings.temperature == battle.right.settings.temperature == battles.SETTINGS_LADDER[1]
    for checkpoint in ("base", "remote:gpt/my-run"):
        battle = battles.new_battle([checkpoint], "settings", BASE, random.Random(0))
        assert battle.left.settings.adapter_strength == battle.right.settings.adapter_strength == 1.0


def test_lockstep_releases_both_sides_at_the_slower_pace():
    fast, slow = reply(list("abcdefghij"), 0.0), reply(list("ABCDE"), 0.04, start_s=0.15)
    shown = list(battles.lockstep(fast, slow, pace_s=0.01))
    assert shown[-1] == ("abcdefghij", "ABCDE")
    for left, right in shown[:-1]:
        # A finished long before B began; still it shows only as much as B has: the fast side never runs ahead.
        assert left == "abcdefghij"[: len(right)], (left, right)
    assert len(shown) >= 4  # it streamed: B's characters arrived over several updates


def test_a_failed_answer_voids_the_turn():
    good, bad = reply(list("abc"), 0.01), reply(list("x"), 0.0, error=RuntimeError("boom"))
    with pytest.raises(WorkbenchError) as caught:
        list(battles.lockstep(good, bad, pace_s=0.01))
    assert str(caught.value) == battles.FAILED and good.cancelled.is_set()


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as s:
        yield s


def play(router, store, battle, message, left, right) -> battles.Battle:
    replies = [reply([left], 0.0), reply([right], 0.0)]
    list(battles.lockstep(*replies, pace_s=0.005))
    return battles.finish_turn(router, store, battle, message, replies)


def test_two_turns_are_stored_with_each_sides_own_history_and_the_vote_counts_once(store, tmp_path):
    router = Router(Settings(home=tmp_path))
    battle = battles.new_battle(["base", "run-a"], "checkpoint", BASE, random.Random(1))
    battle = play(router, store, battle, "Name a fruit.", "Apple.", "Pear.")
    battle = play(router, store, battle, "Another?", "Plum.", "Fig.")
    assert (
        battle.conversation("left")[1]["content"] == "Apple." and battle.conversation("right")[1]["content"] == "Pear."
    )
    made = store.generations()
    assert len(made) == 4 and set(made["origin"]) == {"battle"}
    last = store.get_generation(battle.turns[-1].right_id)
    assert [m["content"] for m in last.messages] == ["Name a fruit.", "Pear.", "Another?"] and last.output == "Fig."

    voted, kept = battles.vote(store, battle, "right", rater=None, reason="shorter", session="voter-0123456789")
    _, kept_again = battles.vote(store, battle, "left", rater=None, reason="", session="voter-0123456789")
    assert voted.voted and kept == "right" and kept_again == "right"  # one ballot per battle
    votes = store.votes()
    assert len(votes) == 1 and votes["reason"][0] == "shorter"
    fought = store.battles().iloc[0]  # FastChat's form: each side's own conversation
    assert {fought["conversation_a"][1]["content"], fought["conversation_b"][1]["content"]} == {"Apple.", "Pear."}
    assert fought["turn"] == 2
    assert store.export_records("preferences")[0] == []  # two contexts: no DPO pair
    _, counts = vote_pairs(store, Settings(home=tmp_path), VoteFilters())
    assert counts["different_contexts"] == 1
    with pytest.raises(WorkbenchError, match="You voted on this battle"):
        battles.start_turn(router, voted, "More?")
    # A visitor's typed prompt is never served to another rater, on any rating screen.
    assert store.next_pair_for("someone-else") is None and store.next_likert_for("someone-else") is None


def test_a_one_turn_battle_is_a_preference_pair(store, tmp_path):
    router = Router(Settings(home=tmp_path))
    battle = battles.new_battle(["base"], "settings", BASE, random.Random(2))
    battle = play(router, store, battle, "Say hi.", "Hi!", "Hello there.")
    battles.vote(store, battle, "left", rater=None, reason=None, session="voter-0123456789")
    pairs, _ = store.export_records("preferences")
    assert len(pairs) == 1 and pairs[0]["chosen"][0]["content"] == "Hi!" and pairs[0]["source"] == "arena"


def test_receipt_names_the_settings_that_differed_or_the_checkpoints():
    hot, cold = GenerationSettings(temperature=1.2).to_dict(), GenerationSettings(temperature=0.2).to_dict()
    same = vote_receipt("left", "SmolLM2", "SmolLM2", hot, cold)
    default = GenerationSettings()  # the settings a label names beside the one that was changed
    p = f"top-p {default.top_p:g}"
    assert same == (
        "Recorded: A is better. Both answers came from **SmolLM2**; "
        f"A: temperature 1.2 · {p}, B: temperature 0.2 · {p}."
    )
    assert "A was" not in same
    assert vote_receipt("tie", "x", "y", hot, hot) == "Recorded: a tie. A was **x**, B was **y**."
    topk = GenerationSettings(top_k=5).to_dict()
    both = vote_receipt("bothbad", "x", "y", hot, topk)
    assert (
        f"A was **x** (temperature 1.2 · {p} · top-k 50)" in both
        and f"(temperature {default.temperature:g} · {p} · top-k 5)" in both
    )
    # an adapter's strength pair, as stored (the store leaves out a strength of 1)
    stored = {k: v for k, v in default.to_dict().items() if k != "adapter_strength"}
    half = vote_receipt("left", "run", "run", default.replace(adapter_strength=0.5).to_dict(), stored)
    assert f"A: temperature {default.temperature:g} · {p} · adapter strength 0.5, B: " in half
    assert half.endswith("adapter strength 1.")
