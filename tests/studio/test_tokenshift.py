"""The tokens a checkpoint moved most over a suite: the grouping on hand-made readings (mean shift, count, the
count threshold, the order by size), and a suite read under a tiny random model's base and adapter, from the suite's
references and from the adapter's own replies; bad limits and sources get one sentence.

Run: .venv/bin/python -m pytest -q tests/studio/test_tokenshift.py
"""

from __future__ import annotations

import math

import pytest

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.studio.tokenshift import MAX_PROMPTS, moved_most, suite_prompts, suite_shift


def reading(*pairs):
    return [{"token": t, "shift": s, "before": 0.2, "after": 0.2 * math.exp(s)} for t, s in pairs]


def test_moved_most_groups_by_token_text_and_orders_by_size():
    readings = [reading((" Paris", 1.0), (" the", 0.1), (" I", -2.0)), reading((" Paris", 0.5), (" I", -1.0))]
    readings.append(reading((" once", 5.0)))  # seen once: left out at min_count 2
    table = moved_most(readings, top=10, min_count=2)
    assert list(table["token"]) == [" I", " Paris"]
    assert list(table["count"]) == [2, 2]
    assert list(table["mean_shift"]) == pytest.approx([-1.5, 0.75])
    assert table["ratio"][0] == pytest.approx(math.exp(-1.5))
    assert table["after"][1] == pytest.approx(0.2 * (math.exp(1.0) + math.exp(0.5)) / 2)
    everything = moved_most(readings, top=2, min_count=1)
    assert list(everything["token"]) == [" once", " I"]
    assert moved_most([], top=5).empty
    with pytest.raises(WorkbenchError, match="at least 1 token"):
        moved_most(readings, top=0)


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    from workbench.generation.engine import ChatEngine

    settings = Settings(home=tmp_path_factory.mktemp("suite-shift"), model=str(tiny_model_dir))
    make_lora_adapter(tiny_model_dir, settings.adapters_dir / "run", tiny_model_dir.name, 7, rank=4)
    return ChatEngine.load(settings)


def test_a_suite_read_under_the_base_and_an_adapter(tiny_engine):
    seen = []
    readings = suite_shift(
        tiny_engine, "identity_heldout", "base", "run", limit=3, progress=lambda d, t: seen.append((d, t))
    )
    references = [refs[0] for _, refs in suite_prompts("identity_heldout", 3)]
    assert ["".join(r["token"] for r in rows) for rows in readings] == references
    assert seen == [(1, 3), (2, 3), (3, 3)]
    table = moved_most(readings, top=5, min_count=2)
    assert 0 < len(table) <= 5 and (table["count"] >= 2).all()
    sizes = list(table["mean_shift"].abs())
    assert sizes == sorted(sizes, reverse=True)
    generated = suite_shift(tiny_engine, "identity_heldout", "base", "run", limit=2, replies="generated")
    assert len(generated) <= 2 and all(rows for rows in generated)


def test_bad_suite_requests_get_one_sentence(tiny_engine):
    with pytest.raises(WorkbenchError, match=f"between 1 and {MAX_PROMPTS} prompts"):
        suite_shift(tiny_engine, "identity_heldout", "base", "run", limit=MAX_PROMPTS + 1)
    with pytest.raises(WorkbenchError, match="references or generated"):
        suite_shift(tiny_engine, "identity_heldout", "base", "run", replies="mine")
    with pytest.raises(WorkbenchError, match="plain text; choose a suite of prompts"):
        suite_shift(tiny_engine, "shakespeare", "base", "run")
    with pytest.raises(WorkbenchError, match="both are run"):
        suite_shift(tiny_engine, "identity_heldout", "run", "run")


def run_cli(capsys, *args):
    from workbench.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_lists_the_tokens_that_moved_most_and_refuses_bad_pairs(capsys, monkeypatch, tiny_engine):
    import json

    from workbench.studio.tokenshift import suite_shift

    monkeypatch.setenv("WORKBENCH_HOME", str(tiny_engine.settings.home))
    monkeypatch.setenv("WORKBENCH_MODEL", str(tiny_engine.settings.model))
    args = ["token-shift", "--after", "run", "--suite", "identity_heldout", "--limit", "2", "--top", "4"]
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    report = json.loads(out)
    expected = moved_most(suite_shift(tiny_engine, "identity_heldout", "base", "run", limit=2), top=4)
    assert [r["token"] for r in report["moved_most"]] == list(expected["token"])
    assert [r["mean_shift"] for r in report["moved_most"]] == pytest.approx(list(expected["mean_shift"]), abs=1e-5)
    assert (report["before"], report["after"], report["prompts"]) == ("base", "run", 2)
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and out.startswith("run against base") and "tokens that moved most over 2 prompts" in out
    code, out, _ = run_cli(
        capsys, "token-shift", "--after", "run", "--prompt", "Hi", "--reply", "Hello there.", "--json"
    )
    tokens = json.loads(out)["tokens"]
    assert code == 0 and "".join(t["token"] for t in tokens) == "Hello there."
    for bad, sentence in (
        (["--after", "base", "--suite", "identity_heldout"], "two different checkpoints to compare; both are base."),
        (["--after", "nope", "--suite", "identity_heldout"], "nope"),
        (["--after", "run", "--suite", "identity_heldout", "--top", "0"], "at least 1 token"),
        (["--after", "run", "--suite", "identity_heldout", "--reply", "x"], "--reply goes with --prompt"),
    ):
        code, out, err = run_cli(capsys, "token-shift", *bad)
        assert code == 2 and out == "" and sentence in err and "Traceback" not in err
