"""A visitor of a public dashboard on Compare, with the real model (AppTest over the seeded store).

Run: .venv/bin/python -m pytest -q tests/test_dashboard_visitors.py
WORKBENCH_ADMIN_OPEN=0 stands in for listening publicly (AppTest has no request context; see
tests/test_dashboard_access.py for the caller rule itself). Each generated column counts against the visitor's
reply limit before anything starts, and a request past it is refused with one sentence and generates nothing;
the visitor's typed prompt is stored with its outputs but served to no rater (the Rate page's pairs left do not
grow) until the owner approves it with `python -m workbench prompts --approve`, and then it is.
"""

from __future__ import annotations

import pytest

from tests.fixtures.dashboard import CHECKPOINTS
from tests.test_dashboard import compare_columns, on
from workbench.store import VISITOR_PROMPTS, Store

pytestmark = pytest.mark.slow  # the real model answers the visitor's prompt
PROMPT = "My name is Ada Lovelace; write me a two-word poem."


def pairs_left(at) -> int:
    """The pairs the Rate page says this rater has left."""
    line = next(c.value for c in at.caption if " left." in c.value)
    return int(line.split(" and ")[-2].split()[-2])


def test_a_visitors_compare_counts_each_column_and_their_prompt_waits_for_approval(dash, monkeypatch, capsys):
    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_ADMIN_OPEN", "0")
    monkeypatch.setenv("WORKBENCH_RATE_LIMIT", "3")
    before = pairs_left(on("rate"))

    at = on("compare")
    at.text_area(key="cmp-prompt").input(PROMPT)
    at.multiselect(key="cmp-checkpoints").set_value(list(CHECKPOINTS))
    at.number_input(key="cmp-max-new-tokens").set_value(4)
    at.button(key="cmp-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert all(c.startswith("Generated now") for _, c, _ in compare_columns(at))
    at.button(key="cmp-go").click().run()  # the same again: from the store, nothing counted
    assert all(c.startswith("From the store") for _, c, _ in compare_columns(at)) and not at.error
    at.checkbox(key="cmp-fresh").check()
    at.button(key="cmp-go").click().run()  # three more would make six this minute
    (refused,) = [e.value.replace("\\", "") for e in at.error]
    assert refused.startswith("You have reached the limit of 3 replies per minute: try again in")
    with Store(dash.settings.db_url) as store:
        made = store.generations()
        waiting = store.prompts(VISITOR_PROMPTS)
    made = made[made["prompt"] == PROMPT]
    assert len(made) == 3 and [p["text"] for p in waiting] == [PROMPT]
    assert set(made["prompt_id"]) == {waiting[0]["id"]}

    rate = on("rate")
    assert pairs_left(rate) == before  # three outputs of one prompt, and not one pair more to rate
    assert PROMPT not in [t.value for t in rate.text]
    compare = on("compare")
    compare.radio(key="cmp-source").set_value("A prompt set").run()
    assert VISITOR_PROMPTS not in compare.selectbox(key="cmp-set").options  # nor offered to other visitors

    monkeypatch.delenv("WORKBENCH_ADMIN_OPEN")  # the owner, on the machine itself (an admin action)
    assert main(["prompts", "--approve", "visitors-dec"]) == 0
    assert "Approved 1 prompt visitors typed" in capsys.readouterr().out
    assert pairs_left(on("rate")) == before + 3
