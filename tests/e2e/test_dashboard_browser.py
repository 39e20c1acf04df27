"""The dashboard in a real browser: `streamlit run dashboard.py` on a free port over a copy of the seeded store,
driven with Playwright and Debian's Chromium; a full-page screenshot of every page goes to tests/artifacts/.

Run: .venv/bin/python -m pytest -q tests/e2e/test_dashboard_browser.py
Compare re-shows the seeded outputs from the store in three columns; Metrics draws its charts; a double click on
a vote records one vote; the leaderboard shows a reason full of HTML and Markdown as plain text (no element
made, no request sent: the `page` fixture fails a test whose page reached past loopback); the Lab loads the
model in the dashboard's process and draws the sweep and the next-token chart.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from types import SimpleNamespace

import pytest

from tests.fixtures.dashboard import CHECKPOINTS, PROMPTS, SEEDED, copy_db, dash_settings, settings_env
from tests.fixtures.servers import ROOT, free_port, server_process
from workbench.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.browser]
XSS = "<img src=x onerror=alert(1)> ![pixel](http://example.com/p.png) <b>bold?</b>"
# The app is idle: no script running, and no element of the previous run still on screen.
IDLE = '!document.querySelector(\'[data-testid="stStatusWidget"], [data-stale="true"]\')'


def _serve(settings, log: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env |= settings_env(settings) | {"PYTHONUNBUFFERED": "1"}
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    health = f"http://127.0.0.1:{port}/_stcore/health"
    return server_process(cmd, health, env, log), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dashboard(seeded_db, engine, tmp_path_factory):
    home = tmp_path_factory.mktemp("dash-browser")
    settings = dash_settings(home, engine.settings, copy_db(seeded_db, home / "store.db"))
    server, url = _serve(settings, "dashboard_server.log")
    with server as proc:
        yield SimpleNamespace(url=url, settings=settings, proc=proc)


@pytest.fixture(scope="module")
def fresh_dashboard(wb_settings, tmp_path_factory):
    """The dashboard of a fresh install: an empty store and only the base model (no adapter)."""
    home = tmp_path_factory.mktemp("dash-fresh")
    settings = dataclasses.replace(dash_settings(home, wb_settings, home / "store.db"), adapters_dir=home / "adapters")
    server, url = _serve(settings, "dashboard_fresh_server.log")
    with server as proc:
        yield SimpleNamespace(url=url, settings=settings, proc=proc)


def shoot(page, artifacts, name: str) -> None:
    """Wait until the app is idle, grow the viewport to the whole page (Streamlit scrolls inside stMain), save."""
    page.wait_for_function(IDLE)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, min(height, 8000))})
    page.wait_for_timeout(800)  # plotly redraws at the new size
    page.screenshot(path=artifacts / name)


def open_page(page, dashboard, path: str, heading: str):
    from playwright.sync_api import expect

    page.goto(f"{dashboard.url}/{path}", wait_until="domcontentloaded")
    expect(page.get_by_role("heading", name=heading)).to_be_visible()


def test_compare_page_reshows_stored_outputs_side_by_side(page, dashboard, artifacts):
    from playwright.sync_api import expect

    open_page(page, dashboard, "", "Compare checkpoints")
    page.get_by_label("Prompt", exact=True).fill(PROMPTS[0])
    page.get_by_test_id("stMultiSelect").filter(has_text="Checkpoints (2 to 4)").locator("input").click()
    page.keyboard.type("dashrun/checkpoint-4")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_text("Generation settings").click()
    box = page.get_by_label("Max new tokens")
    box.fill(str(SEEDED.max_new_tokens))
    box.press("Enter")
    page.wait_for_function(IDLE)
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.get_by_text("From the store", exact=False)).to_have_count(3)
    for name in CHECKPOINTS[1:]:
        expect(page.get_by_role("heading", name=name)).to_be_visible()
    with Store(dashboard.settings.db_url) as store:
        outputs = list(store.generations()["output"])
    for column in page.get_by_test_id("stColumn").filter(has_text="From the store").all():
        assert any(o and o in column.inner_text() for o in outputs)
    shoot(page, artifacts, "dashboard_compare.png")


def test_metrics_page_draws_the_charts(page, dashboard, artifacts):
    from playwright.sync_api import expect

    open_page(page, dashboard, "metrics", "Metrics")
    expect(page.get_by_test_id("stPlotlyChart").locator(".js-plotly-plot").first).to_be_visible()
    expect(page.get_by_text("Outputs behind a BLEU score")).to_be_visible()
    assert page.get_by_test_id("stPlotlyChart").count() >= 3
    shoot(page, artifacts, "dashboard_metrics.png")


def test_rate_page_double_click_records_one_vote(page, dashboard, artifacts):
    from playwright.sync_api import expect

    open_page(page, dashboard, "rate", "Rate outputs")
    name = page.get_by_label("Your name (leave empty to rate anonymously)")
    name.fill("carol")
    name.press("Enter")
    expect(page.get_by_text("carol: 0 pairwise votes")).to_be_visible()  # the page now serves carol's pair
    page.wait_for_function(IDLE)
    reason = page.get_by_label("Why? (optional)")
    expect(reason).to_be_visible()
    reason.fill("clearer and shorter")
    reason.press("Enter")
    page.wait_for_function(IDLE)
    page.get_by_role("button", name="A is better").dblclick()
    expect(page.get_by_text("Recorded: A is better.")).to_be_visible()
    page.wait_for_function(IDLE)
    page.wait_for_timeout(1000)
    with Store(dashboard.settings.db_url) as store:
        votes = store.votes(rater="carol")
    assert len(votes) == 1 and votes["reason"][0] == "clearer and shorter"
    expect(page.get_by_text("carol: 1 pairwise vote and")).to_be_visible()
    shoot(page, artifacts, "dashboard_rate.png")


def test_leaderboard_shows_reasons_as_plain_text(page, dashboard, artifacts):
    from playwright.sync_api import expect

    with Store(dashboard.settings.db_url) as store:
        item = store.next_pair_for("mallory")
        store.add_vote(item.a.id, item.b.id, "b", rater="mallory", shown_left=item.shown_left, reason=XSS)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_page(page, dashboard, "leaderboard", "Leaderboard")
    expect(page.get_by_text(XSS, exact=False)).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    assert page.locator("[data-testid=stMain] img[src='x']").count() == 0
    assert page.locator("[data-testid=stMain] b", has_text="bold?").count() == 0
    shoot(page, artifacts, "dashboard_leaderboard.png")
    assert dialogs == []


def test_lab_page_sweeps_two_settings_and_shows_a_replys_tokens(page, dashboard, artifacts):
    from playwright.sync_api import expect

    # The entry page first: Streamlit 1.67 decides on its first run whether dashboard.py's navigation or the bare
    # pages/ folder lists the pages, and a first visit straight to /lab would pick the folder.
    open_page(page, dashboard, "", "Compare checkpoints")
    open_page(page, dashboard, "lab", "Generation lab")
    for label, value in (("Samples per setting", "2"), ("Max new tokens", "10")):
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        page.wait_for_function(IDLE)
    page.get_by_role("button", name="Run the sweep").click()
    expect(page.get_by_text("temperature 1 · top-p 0.5")).to_be_visible(timeout=180_000)
    page.get_by_role("button", name="Generate a reply and show its tokens").click()
    tokens = page.locator(".wb-token")
    expect(tokens.first).to_be_visible(timeout=120_000)
    assert "top alternatives" in tokens.first.get_attribute("title")
    page.get_by_role("button", name="Show the first token's distribution").click()
    expect(page.get_by_text("tokens survive top-p")).to_be_visible(timeout=120_000)
    assert page.get_by_test_id("stPlotlyChart").count() >= 2  # the sweep's heatmap, next-token bars
    shoot(page, artifacts, "dashboard_lab.png")
    # What the checkpoint (here the base) changed against the first adapter: the same reply's tokens under both.
    page.get_by_role("button", name="Generate a reply with base and show what changed").click()
    shifted = page.locator(".wb-shift")
    expect(shifted.first).to_be_visible(timeout=120_000)
    assert "under base" in shifted.first.get_attribute("title")
    expect(page.locator(".wb-shift-legend")).to_contain_text("more likely under base")
    shoot(page, artifacts, "dashboard_lab_shift.png")


def test_a_fresh_install_leads_somewhere_on_compare_and_rate(page, fresh_dashboard, artifacts):
    from playwright.sync_api import expect

    from workbench.generation import presets

    open_page(page, fresh_dashboard, "", "Compare checkpoints")
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("Only the base model is here, so compare it under two generation settings.")
    expect(page.get_by_text("Generation settings (creative)")).to_be_visible()  # the second setting
    page.get_by_text("Generation settings", exact=True).click()
    expect(page.get_by_role("combobox", name="Preset").first).to_have_value(presets.DEFAULT_PRESET)
    expect(page.get_by_role("button", name="Compare", exact=True)).to_be_enabled()
    assert "None" not in main.inner_text() and "Choose 2 to 4" not in main.inner_text()
    shoot(page, artifacts, "dashboard_fresh_compare.png")
    open_page(page, fresh_dashboard, "rate", "Rate outputs")
    expect(main).to_contain_text("There are no pairs to rate yet.")
    expect(main).to_contain_text("Only the base model is here, so its pairs differ in generation settings.")
    expect(page.get_by_role("button", name="Make 5 pairs to rate")).to_be_enabled()
    assert "You have rated every pair" not in main.inner_text()
    shoot(page, artifacts, "dashboard_fresh_rate.png")
