"""`python -m workbench export-adapter`: write a trained adapter as a GGUF LoRA, with its base and a Modelfile.

    python -m workbench export-adapter my-run --format gguf --out exported/
    python -m workbench export-adapter my-run/checkpoint-20 --out exported/ --json
    ollama create my-run -f exported/Modelfile

DIR receives `<adapter>.lora.gguf` (llama.cpp's LoRA format), the base model's GGUF (a hard link when DIR
is on the same file system, else a copy) and an Ollama `Modelfile` naming both by relative path, so the
folder can be moved as a whole. The base must be a GGUF model (the embedded one, or --model FILE.gguf).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from workbench.cli.common import add_model_flags, print_json, settings_from
from workbench.errors import WorkbenchError

FORMATS = ("gguf",)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("export-adapter", help="export an adapter as a GGUF LoRA with its base and an Ollama Modelfile")
    p.add_argument(
        "adapter", metavar="RUN[/checkpoint-N]", help="the adapter, as `python -m workbench models` names it"
    )
    p.add_argument("--format", choices=FORMATS, default="gguf", help="output format (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created when missing)")
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")
    add_model_flags(p)
    return p


def _same_file(src: Path, dest: Path) -> bool:
    try:
        if os.path.samefile(src, dest):
            return True
        a, b = src.stat(), dest.stat()
    except OSError:
        return False
    # A copy made by an earlier export keeps the source's size and modification time (copy2).
    return (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)


def place_base(src: Path, out_dir: Path) -> tuple[Path, str]:
    """Put the base GGUF into `out_dir`: a hard link when possible, else a copy; (path, "link"/"copy"/"kept")."""
    dest = out_dir / src.name
    if dest.exists() and _same_file(src, dest):
        return dest, "kept"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{src.name}.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        try:
            os.link(src, tmp)
            how = "link"
        except OSError:  # another file system, or one without hard links
            shutil.copy2(src, tmp)
            how = "copy"
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest, how


def write_modelfile(out_dir: Path, base_file: Path, lora_file: Path) -> Path:
    """An Ollama Modelfile naming the base and the LoRA by paths relative to it."""
    path = out_dir / "Modelfile"
    text = (
        "# Made by `python -m workbench export-adapter`; load it with: ollama create NAME -f Modelfile\n"
        f"FROM ./{base_file.name}\n"
        f"ADAPTER ./{lora_file.name}\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def run(args: argparse.Namespace) -> int:
    from workbench.generation.lora_gguf import convert_adapter
    from workbench.registry import find_adapter, resolve_base
    from workbench.safety.names import export_target

    out_dir = export_target(args.out, "output folder")  # no '..', no hidden folder, never through a symlink
    settings = settings_from(args)
    base = resolve_base(settings)
    if base.kind != "gguf":
        raise WorkbenchError(
            f"Exporting to GGUF needs a GGUF base model, but {base.name!r} is a {base.kind}; "
            "pass --model with a .gguf file (or use the embedded model)."
        )
    adapter = find_adapter(settings, args.adapter, base)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"{out_dir} cannot be created ({exc.strerror}).") from None
    lora_file = convert_adapter(
        adapter.path, Path(base.source), out_dir / f"{adapter.name.replace('/', '--')}.lora.gguf"
    )
    base_file, how = place_base(Path(base.source), out_dir)
    modelfile = write_modelfile(out_dir, base_file, lora_file)
    if args.json:
        print_json(
            {
                "adapter": adapter.name,
                "base": base.name,
                "lora_file": str(lora_file),
                "base_file": str(base_file),
                "base_placed": how,
                "modelfile": str(modelfile),
            }
        )
        return 0
    placed = {"link": "hard-linked", "copy": "copied", "kept": "already there"}[how]
    print(f"Wrote {lora_file}")
    print(f"Base  {base_file} ({placed})")
    print(f"Wrote {modelfile}")
    print(f"Load it in Ollama with: ollama create {adapter.run} -f {modelfile}")
    return 0
