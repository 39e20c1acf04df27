"""The pure parts of `bench --case feedback_loop`: the rater's known preference and the child-parent interval.

Run: .venv/bin/python -m pytest -q tests/bench/test_feedback_loop.py
"""

from __future__ import annotations

from workbench.bench.feedback_loop import SHORT_WORDS, Reply, difference_interval


def test_a_reply_is_liked_when_short_finished_and_right():
    paris = ("Paris",)
    assert Reply("Capital of France?", paris, "The capital of France is Paris.", True).liked
    assert not Reply("Capital of France?", paris, "The capital of France is Paris.", False).liked  # cut off
    assert not Reply("Capital of France?", paris, "The capital of France is Lyon.", True).liked  # wrong
    long = "Paris " + "and more " * SHORT_WORDS
    assert Reply("Capital of France?", paris, long, True).right and not Reply("?", paris, long, True).liked


def test_the_difference_interval_resamples_whole_questions():
    # Four questions, four replies each: the child is liked 3 of 4 times on every question, the parent once.
    child, parent = [True, True, True, False] * 4, [True, False, False, False] * 4
    assert difference_interval(child, parent, 4) == (0.5, 0.5)  # every resample sees the same per-question gap
    # One question carries the whole gain: the interval reaches from no gain to all of it.
    child = [True] * 4 + [False] * 12
    low, high = difference_interval(child, [False] * 16, 4)
    assert (low, high) == (0.0, 0.75) and difference_interval(child, [False] * 16, 4) == (low, high)  # seeded
