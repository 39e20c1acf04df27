"""Fuzzing the public entry points with hypothesis: whatever arrives, the answer is a result or one clear
sentence (a WorkbenchError, or argparse's usage error for the CLI), never a traceback, and nothing broken is
stored.

Covered: the chat API's inputs as its server function receives them (message, history, system prompt,
settings including NaN, infinities and huge numbers, stop strings), dataset files of random bytes and deeply
nested JSON, rating payloads and rater names written to a real SQLite store, and CLI arguments of the
generation flags. Example counts are bounded so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.cli import build_parser
from workbench.cli.common import generation_from
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.sizes import check_chat, visitor_sizes
from workbench.generation.settings import GenerationSettings, check_messages, conversation, plain_history
from workbench.store import Store
from workbench.training.data import read_dataset
from workbench.ui.chat import _settings

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.none(),
    st.text(max_size=8),
    st.booleans(),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def deep(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@FAST
@given(
    message=st.one_of(st.text(max_size=200), st.none(), st.integers()),
    history=st.one_of(st.none(), st.text(max_size=5), json_values, st.just([{"role": "user", "content": deep(5000)}])),
    system=st.one_of(st.text(max_size=100), st.none()),
    temperature=numbers,
    max_new_tokens=numbers,
    top_p=numbers,
    top_k=numbers,
    repetition_penalty=numbers,
    seed=numbers,
    stop=st.one_of(st.text(max_size=50), st.none(), st.lists(st.text(max_size=5), max_size=3)),
    min_p=numbers,
    adapter_strength=numbers,
)
def test_chat_inputs_give_a_request_or_one_sentence(
    message,
    history,
    system,
    temperature,
    max_new_tokens,
    top_p,
    top_k,
    repetition_penalty,
    seed,
    stop,
    min_p,
    adapter_strength,
):
    try:
        clean = plain_history(history)
        sampling = (temperature, max_new_tokens, top_p, top_k, repetition_penalty, seed, stop, min_p)
        generation = _settings(*sampling, adapter_strength)
        check_chat(visitor_sizes(Settings()), message, system, clean, generation)
        messages = check_messages(conversation(clean, message, system))
    except WorkbenchError as exc:
        assert str(exc).strip() and "\n" not in str(exc)
        return
    assert messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], str)
    for value in (generation.temperature, generation.top_p, generation.repetition_penalty, generation.adapter_strength):
        assert math.isfinite(value)
    assert 1 <= generation.max_new_tokens <= visitor_sizes(Settings()).max_new_tokens


@FAST
@given(content=st.one_of(st.binary(max_size=400), json_values.map(lambda v: json.dumps(v).encode())))
def test_dataset_files_of_any_bytes_give_a_report_or_one_sentence(tmp_path, content):
    for suffix in (".jsonl", ".json", ".csv"):
        path = tmp_path / f"data{suffix}"
        path.write_bytes(content)
        try:
            report = read_dataset(path)
        except WorkbenchError as exc:
            assert str(exc).strip()
            continue
        assert report is not None


def test_deeply_nested_json_is_a_sentence_not_a_crash(tmp_path):
    nested = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(nested)
    with pytest.raises(WorkbenchError, match="too deeply"):
        read_dataset(tmp_path / "deep.json")
    (tmp_path / "deep.jsonl").write_text(nested + "\n")
    report = read_dataset(tmp_path / "deep.jsonl")
    assert [p.reason for p in report.problems] == ["nests lists or objects too deeply"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}") as opened:
        ids = [opened.add_generation(ck, "Hi?", f"{ck} answer", None) for ck in ("x", "y", "z")]
        opened.fuzz_ids = ids  # type: ignore[attr-defined]
        yield opened


@FAST
@given(
    a=st.one_of(st.integers(min_value=-5, max_value=10), st.text(max_size=3), st.none(), st.booleans()),
    b=st.one_of(st.integers(min_value=-5, max_value=10), st.text(max_size=3)),
    winner=st.one_of(st.sampled_from(["a", "b", "tie", "bothbad"]), st.text(max_size=10)),
    rater=st.one_of(st.none(), st.text(max_size=80)),
    reason=st.one_of(st.none(), st.text(max_size=300)),
    shown_left=st.one_of(st.sampled_from(["a", "b"]), st.text(max_size=3)),
    key=st.one_of(st.none(), st.text(max_size=80)),
)
def test_rating_payloads_are_stored_whole_or_refused(store, a, b, winner, rater, reason, shown_left, key):
    try:
        store.add_vote(a, b, winner, rater=rater, reason=reason, shown_left=shown_left, key=key, session="fuzz-session")
    except WorkbenchError as exc:
        assert str(exc).strip()
    votes = store.votes()
    if len(votes):
        assert set(votes["winner"]) <= {"a", "b", "tie", "bothbad"}
        assert (votes["generation_a_id"] < votes["generation_b_id"]).all()  # one spelling per pair
        assert not votes.duplicated(["rater", "generation_a_id", "generation_b_id"]).any()


@FAST
@given(
    flags=st.lists(
        st.tuples(
            st.sampled_from(["--temperature", "--top-p", "--top-k", "--max-new-tokens", "--seed", "--stop"]),
            st.one_of(st.text(max_size=12), st.sampled_from(["nan", "inf", "-inf", "1e309", "-1", "0", "1e9"])),
        ),
        max_size=4,
    )
)
def test_cli_generation_flags_give_settings_or_a_usage_error(flags):
    argv = ["chat", "--prompt", "hi"] + [part for flag, value in flags for part in (flag, value)]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed its usage line and one sentence
        assert exc.code == 2
        return
    try:
        generation = generation_from(args)
    except WorkbenchError as exc:
        assert str(exc).strip()
        return
    assert isinstance(generation, GenerationSettings) and math.isfinite(generation.temperature)


def test_csv_exports_defuse_formulas_and_import_them_back(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        a, b = (store.add_generation(ck, "Hi?", f"{ck} answer", None) for ck in ("x", "y"))
        reason = '=HYPERLINK("http://evil.example","click")'
        store.add_vote(a, b, "a", rater="mallory", reason=reason)
        out, generations = tmp_path / "votes.csv", tmp_path / "generations.csv"
        store.export("votes", "csv", out)
        store.export("generations", "csv", generations)
        text = out.read_text()
        assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text  # a spreadsheet shows it as text
    with Store(f"sqlite:///{tmp_path / 'again.db'}") as again:
        again.import_file("generations", generations)
        again.import_file("votes", out)
        assert again.votes()["reason"].tolist() == [reason]  # the quote mark is taken off on the way back
