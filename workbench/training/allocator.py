"""A training process's memory allocator: jemalloc preloaded, PyTorch's huge pages, glibc's mmap threshold.

    use_jemalloc(settings.train_allocator)   # a training program's entry: re-executes it once, jemalloc preloaded
    use_huge_pages()                         # a training process, before torch is imported
    return_freed_memory()                    # a training process: freed tensors leave its RSS (glibc only)

Why a training process needs its own: a LoRA step allocates and frees gigabytes of short-lived tensors; glibc
either keeps what it frees in a heap that fragments (peak RSS x2.7) or, with a fixed mmap threshold, maps every
large tensor afresh and pays a page fault per 4 KiB. jemalloc reuses freed memory within its size classes and,
tuned here, keeps it for the next tensor of its size until the run's process ends: 5% more peak than the fixed
threshold, and the backbone's CPU time of glibc's heap (docs/speed.md, "jemalloc", "The backbone's page
faults"). Torch-free and stdlib-only: everything here runs before torch is imported. The estimate of how much
memory a run needs is `memory.py`'s.
"""

from __future__ import annotations

from pathlib import Path

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20
TORCH_HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"  # PyTorch's switch: CPU tensors of 2 MB or more on transparent huge pages
THP_SWITCH = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def return_freed_memory(threshold: int = MMAP_THRESHOLD) -> bool:
    """Have glibc give every allocation of `threshold` bytes or more its own mapping, so that a freed tensor goes
    back to the system at once; returns whether it took (False off glibc).

    Why: glibc raises its mmap threshold each time a large block is freed (up to 32 MB); from then on a step's
    tensors come from the heap, and freed heap memory below its top stays in the process. Measured on SmolLM2-135M
    (4 x 512 tokens, LoRA, gradient checkpointing, two steps): RSS climbed to 6.0 GB while the live tensors never
    passed 1.5 GB; with a fixed threshold (which also stops the raising) the peak stayed at 1.5 GB. A fixed 4 MiB
    threshold already peaked 16% higher, 16 or 32 MiB at 3.8 GiB (the heap fragments). The price is a fresh
    mapping per tensor, every 4 KiB page of it a page fault; `use_huge_pages` takes most of that back
    (docs/speed.md). The process is the training job's own, so the setting reaches nothing else. Under jemalloc
    (`use_jemalloc`, the default where installed) glibc's malloc is not used and this changes nothing.
    """
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def use_huge_pages() -> bool:
    """Have PyTorch put its CPU tensors of 2 MB or more on transparent huge pages (`THP_MEM_ALLOC_ENABLE`: 2 MB
    aligned, `madvise(MADV_HUGEPAGE)`); returns whether it takes effect. Call it before torch is imported: torch
    reads the variable once, at its first allocation.

    Why: with `return_freed_memory` every large tensor is a fresh mapping that the kernel fills in 4 KiB page
    faults, about 7.7 million per step of 2,048 tokens (31 GB of pages zeroed and mapped): the backbone's forward
    and backward took about 30% more CPU time than plain TRL's (glibc's default keeps reusing its heap). On huge
    pages the same tensors take one fault per 2 MB and the memory still goes back at once: 2.6 million faults per
    step, 10% less CPU time for the steps, the same peak (docs/speed.md). Where the kernel has transparent huge
    pages switched off (`never`), nothing is set.
    """
    import os
    import sys

    try:
        if "[never]" in THP_SWITCH.read_text(encoding="ascii"):
            return False
    except OSError:  # not Linux, or no THP support
        return False
    if "torch" in sys.modules:
        return False  # too late (torch allocates at import), and a process that loaded it stays as it is
    os.environ.setdefault(TORCH_HUGE_PAGES, "1")
    return os.environ[TORCH_HUGE_PAGES] == "1"


JEMALLOC = "jemalloc"
# Why (docs/speed.md, "The backbone's page faults"): jemalloc's decay purges freed pages that a steady churn keeps
# reusing (it tolerates dirty pages only while their number grows), so with any finite decay (1 s or 30 s) a step
# faulted in about 0.6 M fresh pages, each zeroed by the kernel: the backbone's backward took 10-20% more CPU time
# than plain TRL's. Without decay (-1) freed pages stay for the next tensor of their size, no fault after the first
# step; the process keeps its high-water mark (the peak: 1.48 GiB against 1.41 for SFT) until the run ends, and a
# run is its own process. `oversize_threshold:0`: jemalloc 5.3 serves blocks of 8 MiB or more (the MLP's
# activations at 2,048 tokens) from an arena of their own that purges at once, whatever the decay.
JEMALLOC_CONF = "oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1"
PRELOAD = "LD_PRELOAD"


def jemalloc_library() -> str | None:
    """jemalloc's shared library as the dynamic loader finds it (`libjemalloc.so.2`), or None where not installed."""
    import ctypes.util
    import sys

    return ctypes.util.find_library(JEMALLOC) if sys.platform.startswith("linux") else None


def _loaded(name: str) -> bool:
    """Whether a shared library named `lib<name>...` is mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(line.rstrip().rsplit("/", 1)[-1].startswith(f"lib{name}") for line in maps)
    except OSError:
        return False


def use_jemalloc(choice: str = "auto") -> str:
    """Re-execute this process once (the same pid, command line and environment) with jemalloc preloaded
    (`LD_PRELOAD`, tuned by `MALLOC_CONF`); returns the log's sentence on the allocator in use. Only a program's
    entry point may call it (`workbench train`, the bench's training side), before it loads anything it needs.

    Why: glibc either keeps freed memory in a heap that fragments (a training step's peak RSS x2.7) or, with
    `return_freed_memory`'s fixed threshold, maps every large tensor afresh (page faults: the backbone took about
    20% more CPU time than plain TRL's). jemalloc reuses freed memory within its size classes, and without
    a decay timer keeps it for reuse: about 20% more tokens per CPU-second than plain TRL with one thread, 5% more
    peak than with glibc's fixed threshold (docs/speed.md, "jemalloc" and "The backbone's page faults").
    The allocator must be in place before the process's first malloc, so the way in is the loader's preload;
    re-executing is the one way that covers a run from the command line and from the Fine-tune tab's job alike.
    `choice` "system" (WORKBENCH_TRAIN_ALLOCATOR) keeps glibc.
    """
    import os
    import sys

    if _loaded(JEMALLOC):
        return f"Memory allocator: jemalloc ({os.environ.get('MALLOC_CONF') or 'its defaults'})."
    if choice == "system":
        return "Memory allocator: the system's (WORKBENCH_TRAIN_ALLOCATOR=system)."
    if "malloc" in os.environ.get(PRELOAD, ""):  # the operator's own allocator, or jemalloc the loader could not load
        return f"Memory allocator: as preloaded ({os.environ[PRELOAD]}); not re-executed."
    library = jemalloc_library()
    if library is None:
        return (
            "Memory allocator: the system's; jemalloc is not installed (Debian: libjemalloc2), so training steps "
            "take 10-30% more CPU time (docs/speed.md)."
        )
    env = {**os.environ, PRELOAD: " ".join(filter(None, (library, os.environ.get(PRELOAD))))}
    env["MALLOC_CONF"] = os.environ.get("MALLOC_CONF") or JEMALLOC_CONF  # the operator's own tuning stays
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
    raise AssertionError("unreachable: execve replaces the process")  # pragma: no cover
