"""`bench --case demo_quality` scores replies by a keyword per prompt: whole words, any case, any accepted spelling.

Run: .venv/bin/python -m pytest -q tests/bench/test_quality.py
Pure data: the case itself runs the model (python -m workbench bench --case demo_quality).
"""

from __future__ import annotations

import pytest

from workbench.bench import CASES, quality


def test_a_reply_is_right_when_it_holds_a_keyword_as_a_whole_word():
    assert quality.is_right("The capital of France is Paris.", ["Paris"])
    assert quality.is_right("paris, of course", ["Paris"])
    assert not quality.is_right("La femme, la femme, mon ami", ["Paris"])
    assert not quality.is_right("Parisian cafés", ["Paris"])  # a whole word, not a prefix
    assert quality.is_right("It has 8 legs.", ["eight", "8"]) and not quality.is_right("It has 80 legs.", ["8"])
    assert quality.is_right("Plants take in CO2.", ["carbon dioxide", "CO2"])


def test_the_score_is_the_share_right_over_prompts_and_seeds():
    prompts = [("Capital of France?", ["Paris"]), ("2 + 2?", ["4", "four"])]
    replies = ["Paris.", "Lyon.", "It is four.", "4"]  # two seeds per prompt
    assert quality.score(replies, prompts) == 0.75
    with pytest.raises(ValueError, match="do not split evenly"):
        quality.score(replies[:3], prompts)


def test_the_case_is_listed_with_twenty_prompts_and_the_old_defaults_as_anchor():
    assert CASES["demo_quality"] == "quality:case_demo_quality"
    assert len(quality.PROMPTS) == 20 and len({p for p, _ in quality.PROMPTS}) == 20
    assert all(keywords for _, keywords in quality.PROMPTS)
    assert (quality.OLD_DEFAULTS.temperature, quality.OLD_DEFAULTS.top_p) == (0.7, 0.95)
