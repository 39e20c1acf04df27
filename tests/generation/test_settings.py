"""GenerationSettings, stop strings, conversation checks and the stop-string stream filter."""

import pytest

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, ReplyStats, check_messages, conversation, parse_stop
from workbench.generation.streaming import _StopFilter


def test_settings_normalise_ui_values():
    s = GenerationSettings(temperature="0", max_new_tokens=24.0, top_k=40.0, seed=7.0, stop=["</s>", "", "</s>"])
    assert (s.temperature, s.max_new_tokens, s.top_k, s.seed, s.stop) == (0.0, 24, 40, 7, ("</s>",))
    assert s.greedy and isinstance(s.max_new_tokens, int)
    assert GenerationSettings(seed="").seed is None
    assert GenerationSettings.from_dict({**s.to_dict(), "unknown": 1}) == s


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("temperature", -0.1, "Temperature must be 0 or more"),
        ("temperature", float("nan"), "Temperature must be a finite number"),
        ("top_p", 0, "Top-p must be above 0 and at most 1"),
        ("top_p", 1.5, "Top-p must be above 0 and at most 1"),
        ("top_k", -1, "Top-k must be 0"),
        ("max_new_tokens", 0, "Max new tokens must be at least 1"),
        ("max_new_tokens", 2.5, "Max new tokens must be a whole number"),
        ("repetition_penalty", 0, "Repetition penalty must be above 0"),
        ("seed", -3, "Seed must be between"),
        ("temperature", "hot", "Temperature must be a number"),
    ],
)
def test_bad_settings_are_refused_with_one_sentence(field, value, needle):
    with pytest.raises(WorkbenchError, match=needle):
        GenerationSettings(**{field: value})


def test_parse_stop_reads_one_per_line_with_escapes():
    assert parse_stop("User:\n\\n\\n\n") == ("User:", "\n\n")
    assert parse_stop(None) == ()


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([], "conversation is empty"),
        ([{"role": "bot", "content": "x"}], "role 'bot'"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only the first message"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message must be the user"),
        ([{"role": "user", "content": "   "}], "message is empty"),
        ([{"role": "user", "content": None}], "text content"),
    ],
)
def test_bad_conversations_are_refused(messages, needle):
    with pytest.raises(WorkbenchError, match=needle):
        check_messages(messages)


def test_conversation_accepts_gradio_content_parts_and_adds_the_system_prompt():
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert conversation(history, "Bye", " Be brief. ") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
    ]


def test_stop_filter_never_shows_a_stop_string_or_its_prefix():
    f = _StopFilter(["\nUser:"])
    shown = [f.feed(c) for c in ["Hello", " there\n", "Us", "er: more"]]
    assert "".join(shown) == "Hello there" and f.hit
    assert shown[1] == " there"  # "\n" held back: it may start the stop string
    g = _StopFilter(["STOP"])
    assert g.feed("no ST") == "no " and g.flush() == "ST"  # at the end, held text is released


def test_stats_summary_names_speed_latency_and_reason():
    stats = ReplyStats(
        model="m",
        adapter=None,
        new_tokens=12,
        tokens_per_s=30.5,
        ttft_s=0.25,
        finish_reason="eos",
        trimmed_turns=2,
        seed=1,
    )
    line = stats.summary()
    for part in ("12 tokens", "30.5 tok/s", "first token 0.25 s", "stopped: eos", "2 oldest messages trimmed"):
        assert part in line
