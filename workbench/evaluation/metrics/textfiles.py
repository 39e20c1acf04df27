"""Reading the text files that metrics score: strict UTF-8, with one clear sentence when a file is not.

`read_text(path)` returns a whole file (for perplexity); `read_lines(path)` returns one segment per line
the way sacrebleu's command line reads hypothesis and reference files (split on "\\n" only, trailing
whitespace stripped), so our scores and sacrebleu's are computed on identical strings.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import WorkbenchError


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkbenchError(
            f"{path} is not UTF-8 text (byte {exc.start} is {data[exc.start : exc.start + 1]!r}); "
            "convert it to UTF-8 first."
        ) from None


def read_bytes(path: str | Path) -> bytes:
    """The raw bytes of a file, with a clear error when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"There is no file {str(path)!r}.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorkbenchError(f"{path} cannot be read ({exc.strerror}).") from None


def read_text(path: str | Path) -> str:
    """A whole file as text; WorkbenchError when it is missing or not UTF-8. A leading BOM is dropped."""
    text = _decode(Path(path), read_bytes(path))
    return text.removeprefix("\ufeff")


def read_lines(path: str | Path) -> list[str]:
    """One segment per line, as sacrebleu's CLI reads files: lines end at "\\n", trailing whitespace stripped.

    sacrebleu opens files with `newline="\\n"` and calls `line.rstrip()`; doing the same here keeps
    BLEU and chrF identical to its command line on the same files (a "\\r\\n" file loses its "\\r").
    """
    text = _decode(Path(path), read_bytes(path))
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line does not start another segment
        lines.pop()
    return [line.rstrip() for line in lines]
