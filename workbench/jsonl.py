"""Reading JSON Lines files with errors a person can act on: the file and the line, in one sentence.

    for number, record in iter_json_lines(path):   # skips blank lines
        ...

A missing file, a file that is not UTF-8, a line that is not JSON, or a line that is not an object
raises `WorkbenchError`. Used for battle files (ratings) and store imports; the training-data reader in
`workbench.training.data` reports bad lines instead of raising, because it must list every problem at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole file as UTF-8 text; a missing or non-UTF-8 file raises WorkbenchError."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"There is no {what} {str(path)!r}.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{path.name} is not UTF-8 text (byte {exc.start} cannot be read).") from None


def iter_json_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file."""
    path = Path(path)
    for number, line in enumerate(read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkbenchError(f"Line {number} of {path.name} is not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise WorkbenchError(f"Line {number} of {path.name} must be a JSON object.")
        yield number, record
