"""A training process's allocator (workbench/training/allocator.py): PyTorch's huge pages when asked for before torch
loads, and the one re-execution with jemalloc preloaded (or none, with the log's sentence).

Run: .venv/bin/python -m pytest -q tests/training/test_allocator.py
"""

from __future__ import annotations

import pytest

from workbench.training import allocator


def test_a_training_process_puts_its_large_tensors_on_huge_pages_when_set_before_torch(monkeypatch):
    """`workbench train` calls use_huge_pages first: a fresh interpreter that does so gets its big tensors on
    transparent huge pages (fewer page faults per step); one where torch is already loaded is told it is too late."""
    import subprocess
    import sys

    if not allocator.THP_SWITCH.is_file() or "[never]" in allocator.THP_SWITCH.read_text(encoding="ascii"):
        pytest.skip("this kernel has no transparent huge pages")
    script = (
        "from workbench.training.allocator import use_huge_pages, return_freed_memory\n"
        "assert use_huge_pages()\n"
        "import torch\n"
        "assert return_freed_memory()\n"
        "x = torch.ones(16 << 20)\n"  # 64 MiB of fp32, a fresh mapping under the 1 MiB threshold
        "print(next(int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')))\n"
    )
    monkeypatch.delenv(allocator.TORCH_HUGE_PAGES, raising=False)  # the child inherits the environment without it
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 32 * 1024  # kB: most of the tensor sits on 2 MB pages

    import torch  # noqa: F401 - loaded here, as in any process that imported torch before asking

    assert allocator.use_huge_pages() is False


def test_a_training_program_re_executes_itself_once_with_jemalloc_and_trains_without_it(monkeypatch):
    """`workbench train` (and the bench's training side) calls use_jemalloc first: a fresh interpreter comes back,
    re-executed once with the same command line, with jemalloc mapped; WORKBENCH_TRAIN_ALLOCATOR=system and a
    machine without the library leave the process as it is, with the log's one sentence."""
    import subprocess
    import sys

    if allocator.jemalloc_library() is None:
        pytest.skip("jemalloc is not installed (Debian: libjemalloc2; `make install` installs it)")
    script = (
        "import os, sys\n"
        "from workbench.training.allocator import use_jemalloc\n"
        "print(os.getpid(), sys.argv[1], use_jemalloc(sys.argv[1]))\n"
    )
    monkeypatch.delenv(allocator.PRELOAD, raising=False)
    monkeypatch.delenv("MALLOC_CONF", raising=False)

    def child(choice: str) -> list[str]:
        process = subprocess.Popen([sys.executable, "-c", script, choice], stdout=subprocess.PIPE, text=True)
        out, _ = process.communicate()
        assert process.returncode == 0
        return [line.removeprefix(f"{process.pid} ") for line in out.splitlines()]  # the same pid: the job's

    # One line, from the same pid: the first process printed nothing before it re-executed itself.
    assert child("auto") == [f"auto Memory allocator: jemalloc ({allocator.JEMALLOC_CONF})."]
    assert child("system") == ["system Memory allocator: the system's (WORKBENCH_TRAIN_ALLOCATOR=system)."]

    monkeypatch.setattr(allocator, "_loaded", lambda name: False)
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)  # in this process: a re-execution would end pytest
    assert "jemalloc is not installed (Debian: libjemalloc2)" in allocator.use_jemalloc("auto")
    monkeypatch.setenv(allocator.PRELOAD, "/nowhere/libjemalloc.so.2")  # asked for and failed: never a second time
    assert (
        allocator.use_jemalloc("auto") == "Memory allocator: as preloaded (/nowhere/libjemalloc.so.2); not re-executed."
    )
