"""JSON Lines reading: blank lines skipped, every bad file or line named in one sentence."""

import pytest

from workbench.errors import WorkbenchError
from workbench.jsonl import iter_json_lines
from workbench.ratings.scoring import load_battles

BATTLE = b'{"model_a": "x", "model_b": "y", "winner": "model_a"}\n'


def test_objects_come_with_their_line_numbers(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert list(iter_json_lines(path)) == [(1, {"a": 1}), (3, {"a": 2})]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (BATTLE + b'{"a": \n', "Line 2 of bad.jsonl is not valid JSON"),
        (BATTLE + b"[1, 2]\n", "Line 2 of bad.jsonl must be a JSON object"),
        (BATTLE + b'{"a": "caf\xe9"}\n', "bad.jsonl is not UTF-8 text"),
    ],
)
def test_bad_files_get_one_sentence(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(WorkbenchError, match=needle):
        list(iter_json_lines(path))
    with pytest.raises(WorkbenchError, match=needle):
        load_battles(path)  # the battle reader of the leaderboard says the same


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(WorkbenchError, match="There is no battle file"):
        load_battles(tmp_path / "nope.jsonl")
