"""The one check for names that reach the file system: runs, checkpoints, adapters, datasets, export targets.

    run = check_name(text, "run")                                  # "my-run", or one clear sentence
    name = check_name("run//checkpoint-10", "adapter", parts=2)    # "run/checkpoint-10" (one spelling, one key)
    folder = inside(settings.adapters_dir, name, "adapter")        # resolved, and refused if it leaves the folder

A name is one or more parts of letters, digits, '.', '_' and '-', each starting with a letter or a digit,
so `..`, dot-folders (`.trainer`, `.git`) and absolute paths never pass; `inside` then resolves the joined
path (following symlinks) and refuses one that lands outside its folder. Messages name the folder by role,
never by its server path, because visitors read them.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from workbench.errors import WorkbenchError

PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: object, what: str, *, parts: int = 1) -> str:
    """`name` normalised (empty parts between slashes dropped), or WorkbenchError with one sentence.

    Args:
        name: The name as given (a run, "run/checkpoint-N", a file name).
        what: What it names, for the sentence ("run", "adapter", ...).
        parts: How many slash-separated parts it may have.
    """
    if not isinstance(name, str) or not name.strip():
        raise WorkbenchError(f"A {what} name is needed.")
    text = name.strip()
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute() or text.startswith("~"):
        raise WorkbenchError(f"The {what} name {text!r} is a path; give the name only.")
    pieces = [p for p in text.split("/") if p]
    if any(p.startswith(".") for p in pieces):
        raise WorkbenchError(f"The {what} name {text!r} has a part that starts with '.', which is not allowed.")
    if len(pieces) > parts:
        raise WorkbenchError(f"The {what} name {text!r} has more than {parts} part{'s' if parts > 1 else ''}.")
    if not pieces or not all(PART.match(p) for p in pieces):
        raise WorkbenchError(
            f"The {what} name {text!r} is not usable: use letters, digits, '.', '_' or '-' "
            "(up to 100, starting with a letter or digit)."
        )
    return "/".join(pieces)


def inside(root: Path, name: str, what: str, *, folder: str | None = None) -> Path:
    """`root / name` resolved (symlinks followed); WorkbenchError when that leaves `root`.

    `name` must already have passed `check_name`; `folder` names `root` in the sentence ("the adapters folder").
    """
    base = Path(root).resolve()
    path = (base / name).resolve()
    if path != base and base not in path.parents:
        raise WorkbenchError(f"The {what} {name!r} leads outside {folder or f'its {what}s folder'}.")
    return path


def within(root: Path, path: str | Path, what: str, *, folder: str | None = None) -> Path:
    """A path (absolute, or relative to `root`) resolved and kept inside `root`, with no dot-prefixed part
    below it: for files chosen by path, such as a shipped dataset or an upload in the app's upload folder."""
    base = Path(root).resolve()
    given = Path(path).expanduser()
    full = given if given.is_absolute() else base / given
    resolved = full.resolve()
    if base not in resolved.parents:
        raise WorkbenchError(f"The {what} {str(path)!r} is not inside {folder or f'its {what}s folder'}.")
    if any(part.startswith(".") for part in resolved.relative_to(base).parts):
        raise WorkbenchError(f"The {what} {str(path)!r} is in a hidden folder, which is not allowed.")
    return resolved


def export_target(path: str | Path, what: str) -> Path:
    """Where an export writes, resolved: any folder the operator names (the CLI is theirs), but no '..' part,
    a plain last name (no dot-prefixed hidden file) and never through a symlink, which would write elsewhere."""
    given = Path(str(path).strip()).expanduser() if str(path).strip() else None
    if given is None:
        raise WorkbenchError(f"A {what} is needed.")
    if ".." in given.parts:
        raise WorkbenchError(f"The {what} {str(path)!r} has a '..' part; name the folder directly.")
    check_name(given.name, what)
    if given.is_symlink():
        raise WorkbenchError(f"The {what} {str(path)!r} is a symbolic link; name a plain file or folder.")
    return given.resolve()
