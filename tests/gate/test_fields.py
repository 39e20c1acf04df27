"""The gate's input declarations: each refuses what does not fit with one sentence naming the field, whatever JSON
it is handed, and accepts what fits. Hypothesis throws arbitrary JSON at every kind."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import WorkbenchError
from workbench.gate import fields as f

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=30,
)
KINDS = [
    f.Number("Temperature", optional=False, low=0, high=2),
    f.Number("Seed", low=-1, high=2**32 - 1, integer=True),
    f.Text("System prompt", chars=100),
    f.Flag("Packing", optional=False),
    f.Choice("Method", options=("sft", "dpo")),
    f.Choice("Checkpoint", dynamic=True),
    f.Choice("Filters", dynamic=True, multiple=True),
    f.Messages("Conversation", messages=4, chars=200),
    f.Upload("Dataset", folder="/tmp/gradio-uploads"),
    f.Index("Examples", count=3),
    f.ServerState("State"),
]


@pytest.mark.parametrize("field", KINDS, ids=lambda field: type(field).__name__ + ":" + field.label)
@settings(max_examples=150, deadline=None)
@given(value=JSON)
def test_any_json_is_accepted_or_refused_in_one_sentence_naming_the_field(field, value):
    try:
        field.check(value)
    except WorkbenchError as exc:
        text = str(exc)
        assert text.startswith(field.label) and text.endswith(".") and "\n" not in text and len(text) < 300


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        (KINDS[0], [0, 0.7, 2], ["0.7", True, math.nan, math.inf, -0.1, 2.5, None, [1]]),
        (KINDS[1], [-1, 42, None], [4.5, 2**40, "7"]),
        (KINDS[2], ["", "Be brief.", None], ["x" * 101, 5, ["a"]]),
        (KINDS[3], [True, False], [None, 1, "true"]),
        (KINDS[4], ["sft", "dpo"], ["ppo", 1.5, "x" * 400]),
        (KINDS[5], ["base", "run/checkpoint-4"], ["x" * 301, {"a": 1}, [1]]),
        (KINDS[6], [[], ["a", "b"]], ["a", [["a"]], ["x"] * 1001]),
        (KINDS[7], [[], [{"role": "user", "content": "hi"}]], [[{"c": "x" * 201}], [{}] * 5, ["hi"], "hi"]),
        (KINDS[9], [0, 2], [3, -1, 1.5, "1"]),
        (KINDS[10], [None, 3, {"a": 1}], [["x" * 10_001]]),
    ],
)
def test_each_kind_takes_what_fits_and_refuses_the_rest(field, good, bad):
    for value in good:
        field.check(value)
    for value in bad:
        with pytest.raises(WorkbenchError, match=f"^{field.label}"):
            field.check(value)


def test_an_upload_must_be_a_file_this_app_received(tmp_path):
    folder = tmp_path / "uploads"
    (folder / "abc").mkdir(parents=True)
    upload = f.Upload("Dataset", folder=str(folder))
    upload.check({"path": str(folder / "abc" / "data.jsonl"), "orig_name": "data.jsonl", "meta": {}})
    for path in ("https://example.com/x.jsonl", "/etc/passwd", str(folder / ".." / "secret"), "file:///etc/passwd"):
        with pytest.raises(WorkbenchError, match="must be a file uploaded to this app"):
            upload.check({"path": path, "meta": {"_type": "gradio.FileData"}})
    with pytest.raises(WorkbenchError, match="at most 1 file"):
        upload.check([{"path": str(folder / "a")}, {"path": str(folder / "b")}])


def test_check_all_names_the_refused_input_and_refuses_lone_surrogates():
    fields = [f.Text("Message", chars=10), f.Number("Top-p", low=0, high=1)]
    f.check_all(fields, ["hi", 0.5])
    with pytest.raises(f.Refused) as refused:
        f.check_all(fields, ["hi", "0.5"])
    assert refused.value.index == 1 and str(refused.value).startswith("Top-p")
    with pytest.raises(f.Refused, match="not valid Unicode") as refused:
        f.check_all(fields, ["\ud800", 0.5])
    assert refused.value.index == 0
    with pytest.raises(f.Refused, match="takes 2 values") as refused:
        f.check_all(fields, ["hi"])
    assert refused.value.index is None
