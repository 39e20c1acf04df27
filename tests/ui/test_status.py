"""The app's readiness as `AppContext.status()` reports it (the `/status` route and the page's banner): before the
load, after a failed load (one sentence, no server path), and the banner's words for each state. The loading
and ready states of a running app are checked end to end in tests/e2e/test_space.py."""

from __future__ import annotations

import pytest

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.ui.context import AppContext
from workbench.ui.status import banner_text


def test_before_the_load_it_is_not_ready_and_says_which_model(wb_settings):
    status = AppContext(wb_settings).status()
    assert status == {
        "ready": False,
        "phase": "waiting for the first request",
        "model": "SmolLM2-135M-Instruct",
        "backend": None,
        "slots": wb_settings.slots,
        "error": None,
        "loaded": [],
    }
    assert banner_text(status).startswith("**Loading SmolLM2-135M-Instruct…** Waiting for the first request.")


def test_a_failed_load_is_one_sentence_without_the_server_path(tmp_path):
    missing = tmp_path / "secret-folder" / "nothing.gguf"
    ctx = AppContext(Settings(home=tmp_path, model=str(missing)))
    with pytest.raises(WorkbenchError):
        ctx.engine()
    status = ctx.status()
    assert status["ready"] is False and status["phase"] == "failed"
    assert status["error"] and str(tmp_path) not in status["error"] and "\n" not in status["error"]
    assert banner_text(status) == f"**The model could not be loaded:** {status['error']}"


def test_once_ready_the_banner_goes():
    ready = {
        "ready": True,
        "phase": "ready",
        "model": "m",
        "backend": "llamacpp",
        "slots": 4,
        "error": None,
        "loaded": ["m"],
    }
    assert banner_text(ready) == ""
