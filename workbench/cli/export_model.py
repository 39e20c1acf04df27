"""`python -m workbench export-model`: an adapter as a merged model that plain transformers and vLLM load, or as a
plain PEFT folder.

    python -m workbench export-model my-run --merged --out exported/my-model
    python -m workbench export-model my-run/checkpoint-20 --out exported/my-adapter     # PEFT folder
    vllm serve exported/my-model          # or AutoModelForCausalLM.from_pretrained("exported/my-model")

The merged folder holds model.safetensors, config.json, generation_config.json and the tokenizer with the chat
template the adapter was trained with; both forms carry the run's workbench.json. The GGUF/Ollama form of an
adapter is `export-adapter`.
"""

from __future__ import annotations

import argparse

from workbench.cli.common import add_model_flags, print_json, settings_from


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export-model", help="export an adapter merged into its base (or as a plain PEFT folder)")
    p.add_argument(
        "adapter", metavar="RUN[/checkpoint-N]", help="the adapter, as `python -m workbench models` names it"
    )
    p.add_argument("--merged", action="store_true", help="merge the adapter into the base model's weights")
    p.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder to write")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    add_model_flags(p)
    return p


def run(args: argparse.Namespace) -> int:
    from workbench.safety.names import export_target
    from workbench.training.export import export_merged, export_peft

    out = export_target(args.out, "output folder")  # no '..', no hidden folder, never through a symlink
    settings = settings_from(args)
    result = (export_merged if args.merged else export_peft)(settings, args.adapter, out)
    if args.json:
        print_json(result)
        return 0
    print(f"Wrote {result['form']} {result['adapter']} (base {result['base']}) to {result['out']}")
    if args.merged:
        print(f"Load it with AutoModelForCausalLM.from_pretrained({result['out']!r}) or: vllm serve {result['out']}")
    return 0
