"""Which process a run's job is, in a way that survives pid reuse, and how to stop it with its children.

    me = identity()                       # {"pid": 4242, "pid_start": "81234567"}: what a job records
    alive(4242, "81234567")               # False once that process is gone, even if a new one got pid 4242
    signal_job(4242, "81234567", signal.SIGTERM)   # its whole process group when it leads one

A pid alone names a process only while it lives: after a restart (or many jobs) the kernel hands the same
number to another process, and `os.kill(pid, 0)` would call a dead run alive forever (blocking its resume)
and let a cancel hit a stranger. So a job records its start time beside its pid: field 22 of
`/proc/<pid>/stat`, clock ticks since boot, which no later process with that pid can share. Where /proc is
missing (macOS), liveness falls back to `os.kill(pid, 0)`. Torch-free.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'; the fields follow the last ')'.
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None (no such process, a zombie, or no /proc)."""
    fields = _stat_fields(pid)
    if not fields or len(fields) < 20 or fields[0] == "Z":
        return None
    return fields[19]  # field 22 of the whole line: state is field 3, the first after the name


def identity(pid: int | None = None) -> dict[str, int | str | None]:
    """{"pid", "pid_start"} of `pid` (this process by default): what a job writes where others look for it."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "pid_start": start_time(pid)}


def alive(pid: int | None, started: str | None) -> bool:
    """Whether process `pid` that started at `started` still runs (a reused pid is not it)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if PROC.is_dir():
        now = start_time(pid)
        return now is not None and (started is None or str(started) == now)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_job(pid: int, started: str | None, sig: int = signal.SIGTERM, leader: int | None = None) -> bool:
    """Send `sig` to the job: its whole process group when it (or `leader`, the process that started the job in
    its own session) leads the group, else the process alone. Returns whether a live process got it."""
    if not alive(pid, started):
        return False
    try:
        group = os.getpgid(pid)
        if group in {pid, leader} and group != os.getpgid(0):  # never the group this process belongs to
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):  # gone meanwhile, or not ours to signal
        return False
    return True
