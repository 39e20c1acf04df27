"""Dataset files -> conversations: the three shapes in JSONL, JSON and CSV, every problem kind with its line number,
the refusal of a file without a usable example, the seeded split, and the shipped data.

Run: .venv/bin/python -m pytest -q tests/training/test_data.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.training.data import KINDS, read_dataset, split_examples

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = ROOT / "data" / "fastchat_identity"


def _jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_dir, local_files_only=True)


def test_pairs_jsonl_with_optional_system(tmp_path):
    path = _jsonl(
        tmp_path / "pairs.jsonl",
        [{"input": "Hi", "output": "Hello!"}, "", {"input": "2+2?", "output": "4", "system": "Be terse."}],
    )
    report = read_dataset(path)
    assert (report.shape, report.format, report.records, report.kept, report.dropped) == ("pairs", "jsonl", 2, 2, 0)
    assert [e.line for e in report.examples] == [1, 3]
    assert report.examples[1].messages == (
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    )
    assert report.headline() == "pairs.jsonl: pairs shape (JSONL), 2 records, 2 kept."


def test_chat_json_list_reports_the_line_where_each_item_starts(tmp_path):
    items = [
        {"messages": [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A bot."}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "x"}]},
    ]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    report = read_dataset(path)
    assert (report.shape, report.format, report.kept) == ("chat", "json", 1)
    starts = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if line == "  {"]
    assert [(p.line, p.kind) for p in report.problems] == [(starts[1], "wrong-role")]
    assert report.examples[0].line == starts[0]


def test_alpaca_csv_with_and_without_input(tmp_path):
    path = tmp_path / "alpaca.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "input", "output"])
        w.writerow(["Translate to French", "cheese", "fromage"])
        w.writerow(["Name a colour", "", "Blue,\nor green"])  # a quoted cell spanning two lines
        w.writerow(["Say nothing", "", ""])
    report = read_dataset(path)
    assert (report.shape, report.format, report.kept) == ("alpaca", "csv", 2)
    assert report.examples[0].messages[0] == {"role": "user", "content": "Translate to French\n\ncheese"}
    assert report.examples[1].messages[0]["content"] == "Name a colour"
    assert [(p.line, p.kind) for p in report.problems] == [(5, "empty-content")]  # after the two-line cell


def test_chat_csv_reads_the_messages_cell_as_json(tmp_path):
    path = tmp_path / "chat.csv"
    good = json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["messages"], [good], ["[{broken"]])
    report = read_dataset(path)
    assert report.shape == "chat" and report.kept == 1
    assert [(p.line, p.kind) for p in report.problems] == [(3, "bad-json")]


def test_every_problem_kind_is_reported_with_its_line(tmp_path, tokenizer):
    long_answer = "word " * 300
    lines = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},  # 1 ok
        '{"messages": [{"role": "user", "content": "Hi"}',  # 2 bad JSON
        '["a", "list"]',  # 3 not an object
        {"prompt": "Hi", "completion": "Hello"},  # 4 missing field
        {"messages": [{"role": "bot", "content": "Hi"}, {"role": "assistant", "content": "x"}]},  # 5 wrong role
        {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]},  # 6 empty content
        {
            "messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "Hi"}]
        },  # 7 last not assistant
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": long_answer}]},  # 8 too long
        {"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]},  # 9 wrong type
        {"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]},  # 10 missing field
    ]
    report = read_dataset(_jsonl(tmp_path / "broken.jsonl", lines), tokenizer=tokenizer, max_length=64)
    found = [(p.line, p.kind) for p in report.problems]
    assert found == [
        (2, "bad-json"),
        (3, "not-object"),
        (4, "missing-field"),
        (5, "wrong-role"),
        (6, "empty-content"),
        (7, "last-not-assistant"),
        (8, "too-long"),
        (9, "wrong-type"),
        (10, "missing-field"),
    ]
    assert set(KINDS) == {kind for _, kind in found}
    assert report.kept == 1 and report.examples[0].tokens is not None and report.examples[0].tokens <= 64
    summary = report.summary()
    assert "10 records, 1 kept, 9 dropped" in summary
    assert "2 a required field is missing" in summary and "1 longer than the maximum length" in summary
    assert "line 8: " in summary and "longer than the maximum of 64" in summary
    assert report.to_dict()["dropped_by_kind"]["missing-field"] == 2


def test_a_file_without_a_usable_example_is_refused_in_one_sentence(tmp_path):
    report = read_dataset(_jsonl(tmp_path / "bad.jsonl", ["{oops", {"input": "", "output": "x"}]))
    with pytest.raises(WorkbenchError) as info:
        report.require_usable()
    message = str(info.value)
    assert message.startswith("bad.jsonl has no usable example: line 1: not valid JSON")
    assert "(and 1 more problems)" in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.jsonl", None, "There is no dataset file"),
        ("data.txt", "hello", "use .jsonl, .json or .csv"),
        ("list.json", '[{"input": "a", "output": "b"},\n  {"input": }]', "not valid JSON at line 2"),
        ("dict.json", '{"input": "a", "output": "b"', "no usable example"),
        ("empty.jsonl", "\n\n", "holds no records"),
        ("latin1.jsonl", b'{"input": "caf\xe9", "output": "x"}', "not UTF-8"),
    ],
)
def test_unreadable_files_fail_with_a_clear_sentence(tmp_path, name, content, expected):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkbenchError, match=expected):
        read_dataset(path).require_usable()


def test_split_is_seeded_and_holds_out_the_fraction(tmp_path):
    report = read_dataset(_jsonl(tmp_path / "p.jsonl", [{"input": f"q{i}", "output": f"a{i}"} for i in range(40)]))
    train, val = split_examples(report.examples, 0.1, seed=7)
    again, val_again = split_examples(report.examples, 0.1, seed=7)
    _, other = split_examples(report.examples, 0.1, seed=8)
    assert (len(train), len(val)) == (36, 4)
    assert [e.line for e in val] == [e.line for e in val_again] and [e.line for e in train] == [e.line for e in again]
    assert {e.line for e in val} != {e.line for e in other}
    assert not {e.line for e in val} & {e.line for e in train}
    assert split_examples(report.examples, 0, seed=7) == (report.examples, [])
    with pytest.raises(WorkbenchError, match=r"between 0 and 0\.5"):
        split_examples(report.examples, 0.7, seed=7)


def test_shipped_identity_data_is_clean_and_the_held_out_part_is_disjoint(tokenizer):
    train = read_dataset(IDENTITY / "train.jsonl", tokenizer=tokenizer, max_length=256)
    heldout = read_dataset(IDENTITY / "heldout.jsonl", tokenizer=tokenizer, max_length=256)
    assert (train.shape, train.kept, train.dropped) == ("chat", 450, 0)
    assert (heldout.shape, heldout.kept, heldout.dropped) == ("chat", 50, 0)
    ids = [
        {json.loads(line)["id"] for line in (IDENTITY / f).read_text(encoding="utf-8").splitlines()}
        for f in ("train.jsonl", "heldout.jsonl")
    ]
    assert len(ids[0]) == 450 and len(ids[1]) == 50 and not ids[0] & ids[1]
    assert (IDENTITY / "LICENSE.FastChat-Apache-2.0").is_file()
    assert "Apache-2.0" in (IDENTITY / "SOURCE.md").read_text(encoding="utf-8")
