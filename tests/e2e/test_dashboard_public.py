"""The dashboard decides who is asking per connection: a real `streamlit run` and Debian's Chromium.

Run: .venv/bin/python -m pytest -q tests/e2e/test_dashboard_public.py
The dashboard listens on 127.0.0.1 as `make dashboard` runs it (no admin token). The same browser is the owner
when it opens http://127.0.0.1:PORT (loopback peer, Host and Origin), and a visitor when the connection carries
what the internet's would: a DNS-rebinding name for loopback (Chromium maps rebind.test to 127.0.0.1, so Host
and Origin say rebind.test) or a proxy's X-Forwarded-For header (an nginx on the same host). Only the owner sees
the training loss curves and may type a rater name. Screenshots: tests/artifacts/dashboard_public_*.png.
No model is loaded (Metrics and Rate do not generate).
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest

from tests.fixtures.servers import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port, server_process
from workbench.store import Store

pytestmark = pytest.mark.browser
REBIND = "rebind.test"
IDLE = '!document.querySelector(\'[data-testid="stStatusWidget"], [data-stale="true"]\')'


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    home = tmp_path_factory.mktemp("dash-public")
    db = f"sqlite:///{home / 'store.db'}"
    with Store(db) as store:
        for step, loss in ((1, 2.9), (2, 2.4), (3, 2.1)):
            store.add_training_log("private-run", step, loss=loss, eval_loss=loss + 0.2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env |= {"WORKBENCH_HOME": str(home), "WORKBENCH_DB_URL": db, "PYTHONUNBUFFERED": "1"}
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]
    with server_process(cmd, f"http://127.0.0.1:{port}/_stcore/health", env, "dashboard_public_server.log") as proc:
        yield SimpleNamespace(port=port, proc=proc)


@pytest.fixture(scope="module")
def rebinding_browser(browser):
    """Chromium that resolves rebind.test to 127.0.0.1 (what a DNS-rebinding attacker's name does) and nothing
    else outside loopback; launched by the session's Playwright (a second sync Playwright in one thread fails)."""
    args = [a for a in CHROMIUM_ARGS if not a.startswith("--host-resolver-rules")]
    args.append(f"--host-resolver-rules=MAP {REBIND} 127.0.0.1 , MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    rebinding = browser.browser_type.launch(executable_path=CHROMIUM, args=args, headless=True)
    yield rebinding
    rebinding.close()


VISITS = {
    "owner": ("127.0.0.1", {}),
    "rebinding": (REBIND, {}),
    "proxied": ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}),
}


@pytest.mark.parametrize("who", list(VISITS))
def test_only_this_machines_own_connection_sees_training_logs_and_types_a_rater_name(
    who, dashboard, rebinding_browser, artifacts
):
    from playwright.sync_api import expect

    host, extra = VISITS[who]
    context = rebinding_browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers=extra)
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        # The front page first: until dashboard.py's st.navigation has run once, Streamlit would serve
        # /metrics as an old-style page of the pages/ folder (the same page code, another sidebar).
        page.goto(f"http://{host}:{dashboard.port}/", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Compare checkpoints")).to_be_visible()
        page.goto(f"http://{host}:{dashboard.port}/metrics", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Training and validation loss")).to_be_visible()
        page.wait_for_function(IDLE)
        refusal = page.get_by_text("Training logs are shown to the admin only")
        chart = page.get_by_test_id("stPlotlyChart")
        if who == "owner":
            expect(chart).to_have_count(1)
            expect(page.get_by_text("private-run").first).to_be_visible()
            expect(refusal).to_have_count(0)
        else:
            expect(refusal).to_be_visible()
            expect(chart).to_have_count(0)
            expect(page.get_by_text("private-run")).to_have_count(0)
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / f"dashboard_public_{who}_metrics.png")

        page.goto(f"http://{host}:{dashboard.port}/rate", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Rate outputs")).to_be_visible()
        page.wait_for_function(IDLE)
        expect(page.get_by_text("Rating anonymously as visitor")).to_be_visible()
        expect(page.get_by_label("Your name (leave empty to rate anonymously)")).to_have_count(int(who == "owner"))
    finally:
        context.close()
