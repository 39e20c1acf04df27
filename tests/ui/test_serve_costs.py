"""What `serve` does to keep each event cheap: matplotlib, which Gradio imports on every event call, marked absent
where it is not installed, so the import fails at once instead of searching sys.path each time."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from workbench.ui.demo import mark_missing_matplotlib


def test_a_missing_matplotlib_is_marked_absent_and_its_import_still_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # restored (or removed again) after the test
    del sys.modules["matplotlib"]
    installed = importlib.util.find_spec("matplotlib") is not None
    assert mark_missing_matplotlib() is not installed
    if installed:  # left alone: the real one imports as before
        assert "matplotlib" not in sys.modules
        return
    assert "matplotlib" in sys.modules and sys.modules["matplotlib"] is None
    with pytest.raises(ImportError):
        import matplotlib  # noqa: F401
    assert importlib.util.find_spec("matplotlib") is None  # what libraries that probe for it see: not installed
    assert mark_missing_matplotlib() is False  # once is enough
