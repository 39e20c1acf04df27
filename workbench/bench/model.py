"""Benchmark cases of the model itself on the transformers backend: start-up, engine overhead against a bare
`model.generate`, bf16 against fp32 on the CPU, and perplexity against a bare forward pass."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from typing import Any

from workbench.bench import STORY, BenchContext, Measure
from workbench.config import Settings
from workbench.generation.settings import GenerationSettings


def _bare_generate(model: Any, ids: list[int], new_tokens: int) -> Callable[[], Any]:
    """A plain `model.generate` of exactly `new_tokens` tokens, run on a fresh thread like the engine's.

    The thread matters on the CPU: torch's OpenMP pool belongs to the thread that calls it, and mixing
    main-thread and worker-thread calls leaves one pool spinning while the other works (measured here:
    17 against 26 tok/s), which would charge the engine for where it runs rather than what it does.
    """
    import threading

    import torch

    inputs = torch.tensor([ids], device=model.device)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(
                input_ids=inputs,
                attention_mask=torch.ones_like(inputs),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=model.generation_config.pad_token_id,
            )

    def run() -> None:
        worker = threading.Thread(target=generate)
        worker.start()
        worker.join()

    return run


def case_load(ctx: BenchContext) -> list[Measure]:
    """Cold start (GGUF dequantisation + save) against the cached safetensors load. Target: cached < 2 s."""
    from workbench.generation.loading import load_base
    from workbench.registry import resolve_base

    base = resolve_base(ctx.settings)
    if base.kind != "gguf":
        return [Measure("load", "cached load", load_base(base, ctx.settings).load_seconds, "s")]
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Settings(home=tmp, device=ctx.settings.device, dtype=ctx.settings.dtype)
        cold = load_base(base, fresh).load_seconds
        warm = statistics.median(load_base(base, fresh).load_seconds for _ in range(ctx.repeats))
    return [
        Measure("load", "first start (GGUF conversion)", cold, "s"),
        Measure.against(
            "load", "later start (cached safetensors)", warm, "s", "first start", cold, "target: well under 2 s"
        ),
    ]


def case_generation(ctx: BenchContext, new_tokens: int = 64) -> list[Measure]:
    """Engine streaming throughput against a bare `model.generate` of the same tokens (engine overhead)."""
    engine = ctx.engine
    ids = engine.encode(STORY)
    settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=new_tokens)  # as bare generate
    replies = []

    def through_engine() -> None:
        reply = engine.stream(STORY, settings)
        reply.result()
        replies.append(reply.stats)

    engine_s = ctx.median_time(through_engine)
    made = statistics.median(s.new_tokens for s in replies)
    bare_s = ctx.median_time(_bare_generate(engine.loaded.model, ids, new_tokens))
    engine_tps, bare_tps = made / engine_s, new_tokens / bare_s
    ttft = statistics.median(s.ttft_s for s in replies if s.ttft_s is not None)
    return [
        Measure.against(
            "generation",
            f"engine tokens/s ({engine.loaded.device}, {str(engine.loaded.dtype)[6:]})",
            engine_tps,
            "tok/s",
            "bare model.generate",
            bare_tps,
            "target: ratio >= 0.9",
        ),
        Measure("generation", "time to first token (streamed)", ttft, "s"),
    ]


def case_cpu_dtype(ctx: BenchContext, new_tokens: int = 32) -> list[Measure]:
    """Generation speed in bf16 against fp32 on this machine's CPU: decides the CPU default dtype."""
    from workbench.generation.loading import load_base
    from workbench.registry import resolve_base

    base = resolve_base(ctx.settings)
    speeds = {}
    for dtype in ("float32", "bfloat16"):
        loaded = load_base(
            base,
            Settings(
                home=ctx.settings.home,
                models_dir=ctx.settings.models_dir,
                model=ctx.settings.model,
                device="cpu",
                dtype=dtype,
            ),
        )
        ids = list(
            loaded.tokenizer.apply_chat_template(STORY, add_generation_prompt=True, return_dict=True)["input_ids"]
        )
        speeds[dtype] = new_tokens / ctx.median_time(_bare_generate(loaded.model, ids, new_tokens))
    faster = max(speeds, key=speeds.get)
    return [
        Measure("cpu_dtype", "fp32 tokens/s (CPU)", speeds["float32"], "tok/s"),
        Measure.against(
            "cpu_dtype",
            "bf16 tokens/s (CPU)",
            speeds["bfloat16"],
            "tok/s",
            "fp32",
            speeds["float32"],
            f"{faster} is faster here; the CPU default is float32",
        ),
    ]


def _perplexity_speed(ctx: BenchContext, model: Any, tokenizer: Any, text: str, window: int, batch: int):
    """(perplexity, tokens/s through `perplexity_of_text`, tokens/s of a bare forward over the same batches)."""
    import torch

    from workbench.evaluation.metrics.perplexity import bos_token, perplexity_of_text, text_windows, tokenize_text

    spans = text_windows(tokenize_text(tokenizer, text), window, bos=bos_token(tokenizer))
    tensors = []
    for at in range(0, len(spans), batch):  # the same right-padded batches, built outside the timed loop
        rows = spans[at : at + batch]
        width = max(len(s.ids) for s in rows)
        ids = torch.tensor([list(s.ids) + [0] * (width - len(s.ids)) for s in rows], device=model.device)
        mask = torch.tensor([[1] * len(s.ids) + [0] * (width - len(s.ids)) for s in rows], device=model.device)
        tensors.append((ids, mask))

    def bare() -> None:
        with torch.inference_mode():
            for ids, mask in tensors:
                model(input_ids=ids, attention_mask=mask)

    def ours() -> Any:
        return perplexity_of_text(model, tokenizer, text, window=window, batch_size=batch)

    result = ours()
    return result.perplexity, result.input_tokens / ctx.median_time(ours), result.input_tokens / ctx.median_time(bare)


def case_perplexity(ctx: BenchContext, window: int = 512, batch: int = 8) -> list[Measure]:
    """Perplexity tokens/s against a bare batched forward pass over the same windows, and bf16 drift from fp32."""
    from workbench.evaluation.suites import find_suite
    from workbench.generation.loading import load_base
    from workbench.registry import resolve_base

    text = find_suite("shakespeare").load_text()
    engine = ctx.engine
    dtype = str(engine.loaded.dtype).removeprefix("torch.")
    with engine.model_for("base") as model:
        ppl, ours, bare = _perplexity_speed(ctx, model, engine.tokenizer, text, window, batch)
    other = "bfloat16" if dtype == "float32" else "float32"
    s = ctx.settings
    loaded = load_base(
        resolve_base(s), Settings(home=s.home, models_dir=s.models_dir, model=s.model, device=s.device, dtype=other)
    )
    other_ppl, other_tps, _ = _perplexity_speed(ctx, loaded.model, loaded.tokenizer, text, window, batch)
    fp32, bf16 = (ppl, other_ppl) if dtype == "float32" else (other_ppl, ppl)
    return [
        Measure.against(
            "perplexity",
            f"perplexity tokens/s ({engine.loaded.device}, {dtype}, window {window}, batch {batch})",
            ours,
            "tok/s",
            "bare batched forward",
            bare,
            "target: ratio close to 1",
        ),
        Measure.against("perplexity", f"{other} tokens/s", other_tps, "tok/s", dtype, ours),
        Measure.against(
            "perplexity",
            "bf16 perplexity (shakespeare)",
            bf16,
            "ppl",
            "fp32",
            fp32,
            f"drift {abs(bf16 - fp32) / fp32:.3%}",
        ),
    ]
