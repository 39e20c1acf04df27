"""The API's parameter declarations: every accepted parameter checked by type and bounds, anything else refused
with one sentence naming it (no model needed)."""

import math

import pytest

from workbench.api.chat import chat_messages, schema_of
from workbench.api.completions import legacy_logprobs, prompt_list
from workbench.api.errors import ApiError, public
from workbench.api.params import ENDPOINTS, MAX_N, parse, reference_rows
from workbench.api.state import generation

CHAT = {"model": "base", "messages": [{"role": "user", "content": "Hi"}]}


def refused(body, endpoint="chat"):
    with pytest.raises(ApiError) as caught:
        parse(body, endpoint)
    return caught.value


def test_a_full_chat_request_is_taken_with_its_types():
    body = {
        **CHAT,
        "temperature": 0,
        "top_p": 0.5,
        "max_tokens": 7,
        "stop": "\n",
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
        "top_k": 40,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "adapter_strength": 0.5,
        "presence_penalty": 0,
        "user": None,  # null is "not given", as OpenAI's clients send it
    }
    params = parse(body, "chat")
    assert params["stop"] == ("\n",) and params["temperature"] == 0.0 and "user" not in params
    settings = generation(params, params["max_tokens"])
    assert (settings.top_k, settings.min_p, settings.repetition_penalty, settings.seed) == (40, 0.05, 1.1, 3)
    assert settings.adapter_strength == 0.5


def test_openai_defaults_apply_when_left_out():
    settings = generation(parse(CHAT, "chat"), 16)
    assert settings.adapter_strength == 1.0
    assert (settings.temperature, settings.top_p, settings.top_k, settings.min_p, settings.repetition_penalty) == (
        1.0,
        1.0,
        0,
        0.0,
        1.0,
    )


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"tools": []}, "tools", "unknown_parameter"),
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"temperature": True}, "temperature", "invalid_type"),
        ({"temperature": 2.5}, "temperature", "invalid_value"),
        ({"top_p": 0}, "top_p", "invalid_value"),
        ({"max_tokens": 1.5}, "max_tokens", "invalid_type"),
        ({"max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"n": MAX_N + 1}, "n", "invalid_value"),
        ({"seed": -1}, "seed", "invalid_value"),
        ({"stop": [1]}, "stop", "invalid_type"),
        ({"stop": ["x"] * 17}, "stop", "invalid_value"),
        ({"presence_penalty": 0.5}, "presence_penalty", "unsupported_value"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"logprobs": 2}, "logprobs", "invalid_type"),
        ({"min_p": 1}, "min_p", "invalid_value"),
        ({"adapter_strength": 1.6}, "adapter_strength", "invalid_value"),
        ({"echo": True}, "echo", "unknown_parameter"),  # a completions parameter
        ({"x" * 10_000: 1}, "(a long name)", "unknown_parameter"),
    ],
)
def test_a_bad_parameter_is_named_in_one_sentence(extra, param, code):
    error = refused({**CHAT, **extra})
    assert (error.status, error.param, error.code) == (400, param, code)
    message = error.body()["error"]["message"]
    assert message.count(". ") == 0 and message.endswith(".") and len(message) < 200


@pytest.mark.parametrize(
    ("extra", "ending"),
    [
        # Open WebUI's native function calling (its default) sends its built-in tools with every chat message.
        ({"tools": [{"type": "function", "function": {"name": "get_current_timestamp"}}]}, "call tools"),
        ({"tool_choice": "auto"}, "call tools"),
        # Open WebUI's repeat_penalty control sends llama.cpp's and Ollama's name for it.
        ({"repeat_penalty": 1.1}, "(did you mean 'repetition_penalty'?)."),
        ({"max_new_tokens": 5}, "(did you mean 'max_tokens'?)."),
        ({"num_ctx": 2048}, "Workbench does not take it."),  # nothing near it
    ],
)
def test_an_unknown_parameter_is_refused_with_why_or_the_name_meant(extra, ending):
    error = refused({**CHAT, **extra})
    (name,) = extra
    message = error.body()["error"]["message"]
    assert (error.status, error.param, error.code) == (400, name, "unknown_parameter")
    assert message.startswith(f"Unknown parameter {name!r}: ") and ending in message and message.count(". ") == 0


def test_required_parameters_and_bodies_that_are_not_objects():
    assert refused({"messages": CHAT["messages"]}).param == "model"
    assert refused([1, 2]).code == "invalid_json"
    assert refused({"model": "base"}, "completions").param == "prompt"
    assert refused({"model": "base", "prompt": "x", "temperature": math.inf}, "completions").code == "invalid_value"


def test_completions_take_zero_max_tokens_and_integer_logprobs():
    params = parse({"model": "base", "prompt": [1, 2], "max_tokens": 0, "echo": True, "logprobs": 1}, "completions")
    assert params["max_tokens"] == 0 and params["logprobs"] == 1
    assert refused({"model": "base", "prompt": "x", "logprobs": 21}, "completions").param == "logprobs"
    assert refused({"model": "base", "prompt": "x", "best_of": 2}, "completions").param == "best_of"


def test_prompts_as_text_ids_or_batches():
    assert prompt_list("hi") == ["hi"]
    assert prompt_list([1, 2]) == [[1, 2]]
    assert prompt_list([[1], "a"]) == [[1], "a"]
    for bad in ([], [[]], [True], [1.5], [[1], 2], ["a"] * 33, {"a": 1}):
        with pytest.raises(ApiError):
            prompt_list(bad)


def test_messages_take_text_parts_and_refuse_the_rest():
    messages = chat_messages(
        [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    )
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    for bad in (
        "hi",
        [{"role": "tool", "content": "x"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        [{"role": "user", "content": 5}],
        [{"role": "assistant", "content": "last"}],
    ):
        with pytest.raises(ApiError) as caught:
            chat_messages(bad)
        assert caught.value.param == "messages"


def test_response_formats():
    assert schema_of(None) is None and schema_of({"type": "text"}) is None
    assert schema_of({"type": "json_object"}) == {"type": "object"}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert schema_of({"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}) == schema
    for bad in ({"type": "xml"}, {"type": "json_schema", "json_schema": {"schema": "x"}}):
        with pytest.raises(ApiError):
            schema_of(bad)


def test_legacy_logprobs_shape_and_offsets():
    rows = [{"token": "The", "logprob": None, "top": []}, {"token": " cat", "logprob": -2.0, "top": [(" cat", -2.0)]}]
    entries = [{"token": " sat", "logprob": -0.5, "top_logprobs": [{"token": " sat", "logprob": -0.5}]}]
    out = legacy_logprobs(rows, entries)
    assert out == {
        "tokens": ["The", " cat", " sat"],
        "token_logprobs": [None, -2.0, -0.5],
        "top_logprobs": [None, {" cat": -2.0}, {" sat": -0.5}],
        "text_offset": [0, 3, 7],
    }


def test_error_sentences_hide_keys_urls_and_paths():
    key = "wbk-0123456789abcdef"
    text = public(f"failed with {key} at http://10.0.0.1:8000/v1 in /srv/secret/file.py", [key])
    assert key not in text and "10.0.0.1" not in text and "/srv/secret" not in text
    assert len(public("x" * 100_000)) <= 500


def test_the_reference_lists_every_declared_parameter():
    names = {row["parameter"] for row in reference_rows()}
    assert names == set(ENDPOINTS["chat"]) | set(ENDPOINTS["completions"])
