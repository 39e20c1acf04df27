"""`python -m workbench perplexity`: perplexity of a text file under a checkpoint.

    python -m workbench perplexity --text book.txt --checkpoint base --json
    python -m workbench perplexity --text book.txt --checkpoint my-run/checkpoint-200 --window 1024 --stride 512
    python -m workbench perplexity --text book.txt --dtype bfloat16 --json    # also fp32, and the drift

Default method: the whole text is tokenized without special tokens and cut into consecutive non-overlapping
windows of --window tokens; every token of a window is predicted from the tokens before it in that window
(n-1 predictions per window of n), and the NLL is averaged over all predictions. --stride N uses the
sliding-window method instead. Prints mean NLL, perplexity, bits per byte, predicted tokens and tokens/s.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from workbench.cli.common import add_model_flags, print_json, settings_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("perplexity", help="perplexity and bits per byte of a text file under a checkpoint")
    p.add_argument("--text", required=True, help="UTF-8 text file")
    p.add_argument("--checkpoint", default="base", help='"base" or an adapter name (default: base)')
    p.add_argument("--window", type=int, default=512, help="tokens per window (default: %(default)s)")
    p.add_argument("--stride", type=int, default=None, help="sliding-window stride (default: non-overlapping)")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_flags(p)
    return p


def _measure(settings, args: argparse.Namespace, text: str) -> dict[str, Any]:
    from workbench.evaluation.metrics.perplexity import perplexity_of_text
    from workbench.generation.engine import ChatEngine

    engine = ChatEngine.load(settings)
    with engine.model_for(args.checkpoint) as model:
        result = perplexity_of_text(
            model, engine.tokenizer, text, window=args.window, stride=args.stride, batch_size=args.batch_size
        )
    return {
        **result.to_dict(),
        "dtype": str(engine.loaded.dtype).removeprefix("torch."),
        "device": str(engine.loaded.device),
        "model": engine.base.name,
    }


def run(args: argparse.Namespace) -> int:
    from workbench.errors import WorkbenchError
    from workbench.evaluation.fingerprints import file_sha256
    from workbench.evaluation.metrics.perplexity import text_windows
    from workbench.evaluation.metrics.textfiles import read_text
    from workbench.registry import BASE_NAME, find_adapter, resolve_base

    text = read_text(args.text)  # a missing or non-UTF-8 file fails before the model loads
    if args.batch_size < 1:
        raise WorkbenchError(f"--batch-size must be at least 1, not {args.batch_size}.")
    text_windows(range(2), args.window, args.stride)  # checks window and stride early
    settings = settings_from(args)
    if args.checkpoint not in ("", BASE_NAME):
        find_adapter(settings, args.checkpoint, resolve_base(settings))  # fails before the slow model load
    out: dict[str, Any] = {"text": args.text, "text_sha256": file_sha256(args.text), "checkpoint": args.checkpoint}
    if settings.dtype == "bfloat16":
        # The reference first, then the bf16 model alone in memory; the drift says what bf16 costs.
        reference = _measure(dataclasses.replace(settings, dtype="float32"), args, text)
        out.update(_measure(settings, args, text))
        out["fp32"] = {k: reference[k] for k in ("mean_nll", "perplexity", "bits_per_byte", "tokens_per_s")}
        out["drift"] = {
            "mean_nll_abs": abs(out["mean_nll"] - reference["mean_nll"]),
            "perplexity_rel": abs(out["perplexity"] - reference["perplexity"]) / reference["perplexity"],
        }
    else:
        out.update(_measure(settings, args, text))
    if args.json:
        print_json(out)
        return 0
    print(
        f"{out['model']} [{out['checkpoint']}] on {args.text}: perplexity {out['perplexity']:.4f}, "
        f"mean NLL {out['mean_nll']:.5f} nats, {out['bits_per_byte']:.4f} bits/byte, "
        f"{out['predicted_tokens']} predicted tokens in {out['sequences']} windows of {out['window']} "
        f"(stride {out['stride']}{', each starting with BOS' if out.get('bos') else ''}), "
        f"{out['tokens_per_s']:.0f} tokens/s, {out['dtype']} on {out['device']}"
    )
    if "drift" in out:
        print(
            f"fp32 reference: perplexity {out['fp32']['perplexity']:.4f}; bf16 drift "
            f"{out['drift']['perplexity_rel']:.2%} in perplexity ({out['drift']['mean_nll_abs']:.5f} nats)"
        )
    return 0
