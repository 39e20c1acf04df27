"""ChatEngine: streaming, stats, settings, trimming, cancel, concurrency and adapters.

Plumbing tests run on a tiny random Llama; the behaviour a user sees (answers, seeds, stop strings,
cancel, adapters) is checked on the real embedded SmolLM2-135M-Instruct.
"""

import shutil
import threading

import pytest

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.engine import ChatEngine
from workbench.generation.settings import GenerationSettings
from workbench.registry import EMBEDDED_NAME

# A small model has near-ties on an open question ("The" 0.152 vs "L" 0.140 for the first token here), so two
# correct backends can part; a system prompt asking for one sentence makes the fact the clear answer.
FRANCE = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
OPEN = [{"role": "user", "content": "Write a short story about a dragon."}]


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("tiny-home")
    return ChatEngine.load(Settings(home=home, model=str(tiny_model_dir)))


def test_stream_reports_stats(tiny_engine):
    reply = tiny_engine.stream(FRANCE, GenerationSettings(temperature=0, max_new_tokens=12))
    text = "".join(reply)
    stats = reply.stats
    assert text == reply.text
    assert stats.prompt_tokens == len(tiny_engine.encode(FRANCE))
    assert 1 <= stats.new_tokens <= 12 and stats.tokens_per_s > 0 and stats.ttft_s is not None
    assert stats.finish_reason in ("eos", "length") and stats.adapter is None and stats.seed is not None
    assert stats.settings["temperature"] == 0 and stats.settings["seed"] == stats.seed


def test_oldest_turns_are_trimmed_but_never_the_system_prompt(tiny_engine):
    window = tiny_engine.context_window  # 256 for the tiny model
    messages = [{"role": "system", "content": "SYSTEM-MARKER stays."}]
    for i in range(30):
        messages += [{"role": "user", "content": f"question {i} " * 3}, {"role": "assistant", "content": "answer " * 5}]
    messages.append({"role": "user", "content": "LAST-MARKER question"})
    ids, trimmed = tiny_engine.fit(messages, max_new_tokens=32)
    prompt = tiny_engine.tokenizer.decode(ids)
    assert len(ids) + 32 <= window and trimmed > 0 and trimmed % 2 == 0
    assert "SYSTEM-MARKER" in prompt and "LAST-MARKER" in prompt and "question 0 " not in prompt
    reply = tiny_engine.stream(messages, GenerationSettings(temperature=0, max_new_tokens=32))
    reply.result()
    assert reply.stats.trimmed_turns == trimmed
    assert "oldest messages trimmed" in reply.stats.summary()


def test_requests_that_cannot_fit_are_refused_before_anything_starts(tiny_engine):
    with pytest.raises(WorkbenchError, match="does not fit this model's context window of 256"):
        tiny_engine.stream([{"role": "user", "content": "word " * 400}], GenerationSettings(max_new_tokens=8))
    with pytest.raises(WorkbenchError, match="Max new tokens must be below 256"):
        tiny_engine.stream(FRANCE, GenerationSettings(max_new_tokens=256))
    with pytest.raises(WorkbenchError, match="no adapter called 'missing'"):
        tiny_engine.stream(FRANCE, GenerationSettings(), adapter="missing")


def test_concurrent_requests_never_mix(tiny_engine):
    """Four threads with different seeds and settings get exactly what they get alone."""
    jobs = [
        GenerationSettings(temperature=t, seed=s, max_new_tokens=20) for t, s in [(1.0, 1), (1.3, 2), (0, 3), (0.8, 4)]
    ]
    alone = [tiny_engine.generate(OPEN, job)[0] for job in jobs]
    together: dict[int, str] = {}

    def run(i):
        together[i] = tiny_engine.generate(OPEN, jobs[i])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [together[i] for i in range(len(jobs))] == alone
    assert len(set(alone)) > 1


@pytest.mark.slow
def test_real_model_answers_paris_and_streams(engine):
    reply = engine.stream(FRANCE, GenerationSettings(temperature=0, max_new_tokens=24))
    chunks = iter(reply)
    first = next(chunks)
    assert first and reply.stats.total_s == 0  # a first chunk arrives while the reply is still running
    rest = "".join(chunks)
    assert "Paris" in first + rest
    assert reply.stats.finish_reason == "eos" and reply.stats.ttft_s < reply.stats.total_s


@pytest.mark.slow
def test_settings_reach_generation(engine):
    sampled = GenerationSettings(temperature=1.0, seed=1234, max_new_tokens=24)
    a, b = engine.generate(OPEN, sampled)[0], engine.generate(OPEN, sampled)[0]
    assert a == b  # same seed, same text
    greedy = engine.generate(OPEN, GenerationSettings(temperature=0, max_new_tokens=24))[0]
    hot = engine.generate(OPEN, GenerationSettings(temperature=1.5, seed=7, max_new_tokens=24))[0]
    assert greedy != hot
    _, stats = engine.generate(OPEN, GenerationSettings(temperature=0, max_new_tokens=5))
    assert stats.new_tokens == 5 and stats.finish_reason == "length"


@pytest.mark.slow
def test_stop_strings_stop_and_are_not_shown(engine):
    full = engine.generate(OPEN, GenerationSettings(temperature=0, max_new_tokens=40))[0]
    word = full.split()[3]
    text, stats = engine.generate(OPEN, GenerationSettings(temperature=0, max_new_tokens=40, stop=(word,)))
    assert stats.finish_reason == "stop" and word not in text
    assert full.startswith(text) and stats.new_tokens < 40


@pytest.mark.slow
def test_cancel_stops_within_one_token(engine):
    reply = engine.stream(OPEN, GenerationSettings(temperature=0.8, seed=3, max_new_tokens=300))
    chunks = iter(reply)
    next(chunks)
    reply.cancel()
    seen = reply.tokens_streamed
    list(chunks)
    assert reply.stats.finish_reason == "cancelled"
    assert reply.stats.new_tokens <= seen + 1 < 300


@pytest.mark.slow
def test_adapters_switch_per_request_and_reload_when_retrained(engine, embedded_dir):
    target = engine.settings.adapters_dir / "random-lora"
    make_lora_adapter(embedded_dir, target, EMBEDDED_NAME, seed=1)
    try:
        greedy = GenerationSettings(temperature=0, max_new_tokens=16)
        base = engine.generate(OPEN, greedy)[0]
        assert "random-lora" in engine.checkpoints()
        adapted, stats = engine.generate(OPEN, greedy, adapter="random-lora")
        assert adapted != base and stats.adapter == "random-lora"
        assert engine.generate(OPEN, greedy, adapter="base")[0] == base  # switching back restores the base
        shutil.rmtree(target)
        make_lora_adapter(embedded_dir, target, EMBEDDED_NAME, seed=2)  # retrained in place
        assert engine.generate(OPEN, greedy, adapter="random-lora")[0] not in (adapted, base)
    finally:
        shutil.rmtree(target, ignore_errors=True)


@pytest.mark.slow
def test_adapter_for_another_base_is_unusable_not_fatal(engine, embedded_dir):
    target = engine.settings.adapters_dir / "foreign"
    make_lora_adapter(embedded_dir, target, "HuggingFaceTB/SmolLM2-1.7B-Instruct")
    try:
        listed = {a.name: a for a in engine.adapters()}
        assert not listed["foreign"].usable and "SmolLM2-1.7B-Instruct" in listed["foreign"].reason
        assert "foreign" not in engine.checkpoints()
        with pytest.raises(WorkbenchError, match="cannot be used"):
            engine.stream(FRANCE, adapter="foreign")
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_token_ids_and_extras_are_checked_before_anything_starts(tiny_engine):
    """Completions of token ids take only ids of the vocabulary that fit; log-probabilities and JSON schemas are
    llama.cpp's, refused in one sentence on transformers."""
    from workbench.generation.backends.base import Extras

    vocabulary = len(tiny_engine.tokenizer)
    for ids, needle in (([], "empty"), ([vocabulary], "vocabulary"), ([True], "vocabulary"), ([1] * 10_000, "fit")):
        with pytest.raises(WorkbenchError, match=needle):
            tiny_engine.complete(ids, GenerationSettings(max_new_tokens=2))
    for extras in (Extras(logprobs=1), Extras(json_schema={"type": "object"})):
        with pytest.raises(WorkbenchError, match=r"offered on the llama\.cpp backend"):
            tiny_engine.stream([{"role": "user", "content": "Hi"}], GenerationSettings(), extras=extras)
    _, stats = tiny_engine.complete(
        tiny_engine.tokenize("Hello"), GenerationSettings(temperature=0, max_new_tokens=3)
    ).result()
    assert stats.new_tokens <= 3 and stats.completion and stats.prompt_tokens == len(tiny_engine.tokenize("Hello"))
    _, chatted = tiny_engine.generate([{"role": "user", "content": "Hi"}], GenerationSettings(max_new_tokens=2))
    assert not chatted.completion  # a chat in the model's template is not completion mode
