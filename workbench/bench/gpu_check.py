"""`make gpu-check`: the GPU path in one call: chat, per-request adapters, LoRA SFT and DPO, perplexity, agreement.

    python -m workbench.bench.gpu_check                  # on a CUDA machine (skips with one sentence without one)
    python -m workbench.bench.gpu_check --device cpu     # the same steps on the CPU: a dry run of the plumbing
    python -m workbench.bench.gpu_check --model smollm2  # a real model instead of the tiny one (any WORKBENCH_MODEL)

By default it builds its own model, so that nothing has to travel with the working tree but the code: a byte-level
BPE tokenizer trained on the shipped identity data (`data/fastchat_identity`) with a ChatML template, and a
randomly initialised Llama from a small config (a few MB). On that model, through Workbench's own code paths
(transformers on the device, bf16 on a GPU that has it), it runs and prints:
- chat: a greedy reply through `ChatEngine` (tokens/s, peak memory);
- LoRA SFT and DPO: a few steps each through `run_job`, as `workbench train` runs them (tokens/s, peak memory,
  first and last loss, the loss head used);
- per-request adapters: base, SFT and DPO requests in one batch give the same replies as one at a time, and each
  adapter changes the reply's scores (teacher-forced NLL under each checkpoint);
- adapter strength: the reply NLL at strengths 0, 0.5 and 1 (strength 0 gives the base's scores exactly);
- perplexity: `perplexity_of_text` over the data (tokens/s, peak memory);
- backend agreement: the device model against the same weights in fp32 on the CPU, teacher-forced on the
  data's replies (share of positions with the same most likely token, relative NLL difference).
Peak memory is `torch.cuda.max_memory_allocated` per step on a GPU, the process's peak RSS on the CPU. A random
model has many near-ties, so its argmax agreement reads lower than a trained model's; the NLL difference is the
robust figure. CI never runs this; `tests/bench/test_gpu_check.py` runs the CPU dry run on a tiny model.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.config import REPO_ROOT, Settings

DATA = REPO_ROOT / "data" / "fastchat_identity" / "train.jsonl"
NO_GPU = "No CUDA GPU is visible here, so the GPU check is skipped (run it on a machine with one, or --device cpu)."
PROMPT = [{"role": "user", "content": "Who are you?"}]


@dataclasses.dataclass(frozen=True)
class Size:
    """The built model's size: hidden width, layers, heads, vocabulary, and the conversations used."""

    hidden: int = 256
    layers: int = 4
    heads: int = 4
    vocab: int = 4096
    conversations: int = 64
    steps: int = 4
    max_length: int = 256


@contextlib.contextmanager
def peak_memory(device: str, into: dict[str, Any]) -> Iterator[None]:
    """Put the peak memory of the block into `into["peak_mb"]`: allocated on a GPU, the process's RSS on the CPU."""
    import torch

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize()
        into["peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:  # ru_maxrss never falls: the process's peak so far (kilobytes on Linux)
        into["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    into["seconds"] = round(time.perf_counter() - began, 2)


def _conversations(count: int) -> list[dict[str, Any]]:
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[:count]]


def build_model(folder: Path, size: Size) -> Path:
    """A tokenizer trained on the data (byte-level BPE, ChatML) and a random Llama of `size`, saved in `folder`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from workbench.generation.loading import CHATML_TEMPLATE

    texts = [m["content"] for row in _conversations(10_000) for m in row["messages"]]
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size.vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.hidden * 2,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.heads,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def chat_figures(engine: Any, device: str) -> dict[str, Any]:
    """A greedy reply through the engine: its tokens/s."""
    from workbench.generation.settings import GenerationSettings

    out: dict[str, Any] = {}
    with peak_memory(device, out):
        _, stats = engine.generate(PROMPT, GenerationSettings(temperature=0, max_new_tokens=64))
    return {**out, "new_tokens": stats.new_tokens, "tokens_per_s": round(stats.tokens_per_s or 0, 1)}


def train_figures(settings: Settings, method: str, data: Path, size: Size, device: str) -> dict[str, Any]:
    """A few LoRA steps of `method` through `run_job` (as `workbench train` runs them)."""
    from workbench.training.config import JobConfig, RunPaths
    from workbench.training.runlog import read_log
    from workbench.training.trainer import run_job

    config = JobConfig(
        run=f"gpu-check-{method}",
        data=str(data),
        method=method,
        max_steps=size.steps,
        max_length=size.max_length,
        val_fraction=0,
        save_steps=size.steps,
        logging_steps=1,
    )
    out: dict[str, Any] = {}
    with peak_memory(device, out):
        summary = run_job(config, settings, progress=False, echo=lambda *_: None, store=False)
    records = read_log(RunPaths.of(settings, config.run).log_file)
    losses = [r["train_loss"] for r in records if r["event"] == "log"]
    head = next((r.get("loss_head") for r in records if r["event"] == "start"), None)
    return {
        **out,
        "adapter": summary["adapter"],
        "steps": summary["step"],
        "tokens_per_s": summary["tokens_per_s"],
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "loss_head": head,
    }


def reply_scores(model: Any, tokenizer: Any, conversations: list[dict[str, Any]]) -> tuple[list[int], Any]:
    """Teacher-forced scores of each conversation's last reply under `model`: the most likely token at each reply
    position, and the log-probabilities of the reply's tokens (1-D, all conversations in turn)."""
    import torch

    from workbench.evaluation.parity import teacher_forced

    predicted, logprobs = [], []
    for row in conversations:
        prompt = tokenizer.apply_chat_template(
            row["messages"][:-1], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        reply = tokenizer(row["messages"][-1]["content"], add_special_tokens=False)["input_ids"]
        lp, top = teacher_forced(model, prompt, reply)
        logprobs.append(lp.float().cpu())
        predicted += top.tolist()
    return predicted, torch.cat(logprobs)


def adapter_figures(engine: Any, adapters: list[str], conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-request adapters: one mixed batch equals one request at a time, and each adapter moves the scores."""
    from workbench.generation.settings import GenerationSettings

    greedy = GenerationSettings(temperature=0, max_new_tokens=24)
    names = [None, *adapters]
    batched = [text for text, _ in engine.generate_many([(PROMPT, greedy, name) for name in names])]
    alone = [engine.generate(PROMPT, greedy, name)[0] for name in names]
    nll = {}
    for name in names:
        with engine.model_for(name) as model:
            _, logprobs = reply_scores(model, engine.tokenizer, conversations)
        nll[name or "base"] = round(float(-logprobs.mean()), 5)
    return {"mixed_batch_equals_alone": batched == alone, "reply_nll": nll}


def strength_figures(engine: Any, adapter: str, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """Adapter strength (peft's scaling times it, per request): the reply NLL at strengths 0, 0.5 and 1; strength 0
    must give the base model's scores exactly and strength 1 the adapter's."""
    nll = {}
    for strength in (0.0, 0.5, 1.0):
        with engine.model_for(adapter, strength) as model:
            _, logprobs = reply_scores(model, engine.tokenizer, conversations)
        nll[strength] = round(float(-logprobs.mean()), 5)
    with engine.model_for(None) as model:
        _, logprobs = reply_scores(model, engine.tokenizer, conversations)
    return {"adapter": adapter, "reply_nll": nll, "zero_equals_base": nll[0.0] == round(float(-logprobs.mean()), 5)}


def perplexity_figures(engine: Any, device: str, size: Size) -> dict[str, Any]:
    """`perplexity_of_text` (what `workbench perplexity` runs) over the data's replies."""
    from workbench.evaluation.metrics.perplexity import perplexity_of_text

    text = "\n\n".join(row["messages"][-1]["content"] for row in _conversations(size.conversations))
    out: dict[str, Any] = {}
    with peak_memory(device, out), engine.model_for(None) as model:
        result = perplexity_of_text(model, engine.tokenizer, text, window=size.max_length, batch_size=8)
    return {**out, "perplexity": round(result.perplexity, 3), "tokens_per_s": round(result.tokens_per_s, 1)}


def agreement_figures(engine: Any, settings: Settings, conversations: list[dict[str, Any]]) -> dict[str, Any]:
    """The device model against the same weights in fp32 on the CPU, teacher-forced on the data's replies."""
    from workbench.generation.loading import load_base

    with engine.model_for(None) as model:
        top, logprobs = reply_scores(model, engine.tokenizer, conversations)
    reference = load_base(engine.base, dataclasses.replace(settings, device="cpu", dtype="float32"))
    ref_top, ref_logprobs = reply_scores(reference.model, reference.tokenizer, conversations)
    nll, ref_nll = float(-logprobs.mean()), float(-ref_logprobs.mean())
    return {
        "positions": len(top),
        "argmax_agreement": round(sum(a == b for a, b in zip(top, ref_top, strict=True)) / len(top), 4),
        "nll_relative_difference": abs(nll - ref_nll) / ref_nll,
        "dtype": str(engine.loaded.dtype).removeprefix("torch."),
    }


def run_check(device: str, work: Path, size: Size, model: str | None = None) -> dict[str, Any]:
    """Every step of the check on `device`, in `work` (a scratch folder); returns the figures."""
    from workbench.bench.train_memory import dpo_pairs
    from workbench.generation.engine import ChatEngine

    conversations = _conversations(size.conversations)
    chats = work / "chats.jsonl"
    chats.write_text("".join(json.dumps(row) + "\n" for row in conversations), encoding="utf-8")
    model = model or str(build_model(work / "tiny-llama", size))
    settings = Settings(home=work, model=model, device=device, backend="transformers")
    figures: dict[str, Any] = {"device": device, "model": model}
    if device.startswith("cuda"):
        import torch

        figures["gpu"] = torch.cuda.get_device_name(torch.device(device))
    figures["sft"] = train_figures(settings, "sft", chats, size, device)
    figures["dpo"] = train_figures(settings, "dpo", dpo_pairs(chats, work / "pairs.jsonl"), size, device)
    engine = ChatEngine.load(settings)
    try:
        figures["chat"] = chat_figures(engine, device)
        adapters = [figures["sft"]["adapter"], figures["dpo"]["adapter"]]
        figures["adapters"] = adapter_figures(engine, adapters, conversations[:4])
        figures["strength"] = strength_figures(engine, adapters[0], conversations[:4])
        figures["perplexity"] = perplexity_figures(engine, device, size)
        figures["agreement"] = agreement_figures(engine, settings, conversations[:8])
    finally:
        engine.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu for a dry run (default: cuda)")
    parser.add_argument("--model", default=None, help="a model instead of the built one (what WORKBENCH_MODEL takes)")
    parser.add_argument("--steps", type=int, default=Size.steps, help="training steps per method")
    parser.add_argument("--tiny", action="store_true", help="the smallest model and data (the unit test's)")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    size = Size(hidden=64, layers=2, vocab=1024, conversations=16, max_length=128) if args.tiny else Size()
    size = dataclasses.replace(size, steps=args.steps)
    with tempfile.TemporaryDirectory(prefix="workbench-gpu-check-") as work:
        figures = run_check(args.device, Path(work), size, args.model)
    print(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
