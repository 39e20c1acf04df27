"""The Fine-tune tab end to end: the "train" and "cancel_training" API endpoints through gradio_client (admin token
checked there too), and a browser that finds a fresh install's tab without dead ends (Cancel, Resume and Send
off, an empty chart that says so, a refusal as a sentence under the buttons), validates the shipped dataset,
starts a run, watches the chart, and finds the new checkpoint in the Chat tab's selector without a restart. The
app trains the tiny random model; the browser tests are marked `browser` (not in `make test-fast`).

Run: .venv/bin/python -m pytest -q tests/e2e/test_finetune_ui.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from types import SimpleNamespace

import pytest

from tests.fixtures.finetune import identity_file, settings_env
from tests.fixtures.servers import ROOT, free_port, server_process
from workbench.access import NEEDS_TOKEN
from workbench.config import Settings
from workbench.training import jobs

pytestmark = pytest.mark.slow  # the app trains (the tiny model, in its own processes)

TOKEN = "let-me-train"
TINY_RUN = {  # the API's hyperparameters by name for a few seconds on the tiny model; the rest keep the form's
    "learning_rate": 1e-3,
    "max_steps": 4,
    "max_length": 128,
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "warmup": 0,
    "eval_steps": 2,
    "save_steps": 2,
    "seed": 1,
}


@pytest.fixture(scope="module")
def finetune_app(tiny_model_dir, models_dir, tmp_path_factory):
    """`python app.py` serving the tiny model, with an admin token and its own adapters folder."""
    home = tmp_path_factory.mktemp("finetune-app")
    settings = Settings(home=home, models_dir=models_dir, adapters_dir=home / "adapters", model=str(tiny_model_dir))
    port = free_port()
    env = settings_env(settings) | {
        "WORKBENCH_ADMIN_TOKEN": TOKEN,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
    }
    url = f"http://127.0.0.1:{port}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "finetune_app.log") as proc:
        yield SimpleNamespace(url=url, settings=Settings(**{**settings.__dict__, "admin_token": TOKEN}), proc=proc)


def _wait_for(settings: Settings, run: str, done, timeout: float = 180) -> jobs.RunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = jobs.run_status(settings, run)
        if done(status):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"{run}: {jobs.run_status(settings, run)}")


@pytest.mark.browser
def test_a_fresh_tab_has_no_dead_ends_and_refusals_are_sentences(finetune_app, page, artifacts):
    """Before any run exists (this module's first test): the buttons that act on a run are off, the chart says
    why it is empty, and a refused Start answers under the buttons, with no error badge or pop-up."""
    from playwright.sync_api import expect

    page.goto(finetune_app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Fine-tune").click()
    expect(page.locator("#ft-progress")).to_contain_text(NEEDS_TOKEN)  # the one answer to a missing token
    page.locator("#ft-token input").fill(TOKEN)
    page.locator("#ft-token input").press("Tab")
    expect(page.locator("#ft-progress")).to_contain_text("No runs yet.")
    for button in ("#ft-cancel", "#ft-resume", "#ft-send-arena"):
        expect(page.locator(button)).to_be_disabled()
    expect(page.locator("#ft-plot")).to_contain_text("No loss yet: start a run")
    assert page.locator("#ft-plot .xtick").count() == 0  # no axes from -1 to 6
    expect(page.locator("#ft-start")).to_be_enabled()  # the shipped dataset passed its check
    page.locator("#ft-run-name textarea").fill("no such/name")
    page.locator("#ft-start").click()
    expect(page.locator("#ft-status")).to_contain_text("Not started: The run name 'no such/name' is not usable")
    page.screenshot(path=artifacts / "finetune_fresh.png", full_page=True)
    assert page.locator(".toast-body").count() == 0 and page.get_by_text("Error", exact=True).count() == 0
    assert not (finetune_app.settings.adapters_dir / "no such").exists()


def test_train_endpoint_needs_the_token_trains_and_cancels(finetune_app, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(finetune_app.url, verbose=False)
    data = identity_file(tmp_path / "mine.jsonl", 30)
    args = {"upload": handle_file(str(data)), "dataset": None, "val_upload": None, "val_fraction": 0.1} | TINY_RUN
    for token in ("wrong", ""):
        with pytest.raises(AppError, match="needs the admin token"):
            client.predict(**args, run_name="api-run", token=token, api_name="/train")
    assert not (finetune_app.settings.adapters_dir / "api-run").exists()

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"input": "only a question"}\n', encoding="utf-8")
    with pytest.raises(AppError, match=r"broken\.jsonl has no usable example: line 1: missing field 'output'"):
        client.predict(**(args | {"upload": handle_file(str(broken))}), run_name="x", token=TOKEN, api_name="/train")

    message, _, _ = client.predict(**args, run_name="api-run", token=TOKEN, api_name="/train")
    assert "Started **api-run**" in message
    status = _wait_for(finetune_app.settings, "api-run", lambda s: not s.active)
    assert (status.status, status.step, status.adapter) == ("finished", 4, "api-run")
    assert status.checkpoints == ["api-run/checkpoint-2", "api-run/checkpoint-4"]
    meta = json.loads((finetune_app.settings.adapters_dir / "api-run" / "workbench.json").read_text())
    assert meta["datasets"]["train"]["file"] == "mine.jsonl"  # the upload was kept under its own name

    long_run = args | {"max_steps": 400}
    client.predict(**long_run, run_name="api-cancel", token=TOKEN, api_name="/train")
    _wait_for(finetune_app.settings, "api-cancel", lambda s: s.status == "running" and s.step >= 1)
    with pytest.raises(AppError, match="needs the admin token"):
        client.predict(run_name="api-cancel", token="wrong", api_name="/cancel_training")
    assert "Cancelling" in client.predict(run_name="api-cancel", token=TOKEN, api_name="/cancel_training")
    status = _wait_for(finetune_app.settings, "api-cancel", lambda s: not s.active, timeout=60)
    assert status.status == "cancelled" and status.step < 400 and status.adapter is None

    with pytest.raises(AppError, match="needs the admin token"):
        client.predict(run_name="api-cancel", token="wrong", api_name="/resume_training")
    assert "Resuming" in client.predict(run_name="api-cancel", token=TOKEN, api_name="/resume_training")
    resumed = _wait_for(finetune_app.settings, "api-cancel", lambda s: s.status == "running" and s.step > status.step)
    client.predict(run_name="api-cancel", token=TOKEN, api_name="/cancel_training")
    assert _wait_for(finetune_app.settings, "api-cancel", lambda s: not s.active, timeout=60).status == "cancelled"
    assert resumed.max_steps == 400


def fill_hyperparameters(page, values: dict[str, str]) -> None:
    """Open the hyperparameters and type `values` (elem_id -> text). The accordion's inputs can be mounted again
    just after it first opens (a slow machine once trained 40 steps: the first value typed was lost), so each
    value is typed until it holds, and all are checked before the caller starts training."""
    from playwright.sync_api import expect

    page.locator("#ft-hyperparameters").click()
    for elem_id, value in values.items():
        box = page.locator(f"#{elem_id} input")
        for _ in range(3):
            box.fill(value)
            box.press("Tab")
            if box.input_value() == value:
                break
    for elem_id, value in values.items():
        expect(page.locator(f"#{elem_id} input")).to_have_value(value)


@pytest.mark.browser
def test_page_validates_trains_charts_and_the_chat_lists_the_checkpoint(finetune_app, page, artifacts):
    from playwright.sync_api import expect

    page.goto(finetune_app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Fine-tune").click()
    report = page.locator("#ft-report")
    expect(report).to_contain_text(f"Not checked: {NEEDS_TOKEN}")  # a visitor's upload is not read
    page.locator("#ft-token input").fill(TOKEN)
    page.locator("#ft-token input").press("Tab")  # the token's blur checks the chosen dataset
    expect(report).to_contain_text("train.jsonl: chat shape (JSONL), 450 records, 450 kept.")
    start = page.locator("#ft-start")
    expect(start).to_be_enabled()
    name = page.locator("#ft-run-name textarea")
    expect(name).to_have_value(re.compile(r"^run-\d{8}-\d{6}$"))  # a fresh suggestion per page load
    run = name.input_value()

    fill_hyperparameters(
        page, {"ft-max-steps": "4", "ft-max-length": "128", "ft-eval-steps": "2", "ft-save-steps": "2"}
    )
    start.click()
    expect(page.locator("#ft-status")).to_contain_text(f"Started {run}")
    expect(page.locator("#ft-progress")).to_contain_text(f"{run}: finished, step 4 of 4", timeout=180_000)
    expect(page.locator("#ft-plot .js-plotly-plot")).to_be_visible()
    expect(page.locator("#ft-progress")).to_contain_text(f"{run}/checkpoint-4")
    expect(page.locator("#ft-send-arena")).to_be_enabled()  # a finished run: it can be sent, not resumed
    expect(page.locator("#ft-cancel")).to_be_disabled()
    expect(page.locator("#ft-resume")).to_be_disabled()
    page.screenshot(path=artifacts / "finetune_tab.png", full_page=True)

    page.get_by_role("tab", name="Chat").click()
    page.locator("#checkpoint input").click()
    expect(page.get_by_role("option", name=f"{run}/checkpoint-4")).to_be_visible()
    expect(page.get_by_role("option", name=run, exact=True)).to_be_visible()


@pytest.mark.browser
def test_page_trains_dpo_on_a_pairs_file_and_charts_the_rewards(finetune_app, page, tmp_path):
    from playwright.sync_api import expect

    pairs = tmp_path / "prefs.jsonl"
    qa = [(f"What is {i} plus {i}?", f"{2 * i}.") for i in range(12)]
    pairs.write_text(
        "".join(json.dumps({"prompt": q, "chosen": "Happy to help! " + a, "rejected": a}) + "\n" for q, a in qa)
    )
    page.goto(finetune_app.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#ft-token input").fill(TOKEN)
    page.locator("#ft-method").get_by_label("dpo").check()
    page.locator("#ft-upload input[type=file]").set_input_files(str(pairs))
    expect(page.locator("#ft-report")).to_contain_text("prefs.jsonl: preferences shape (JSONL), 12 records, 12 kept.")
    expect(page.locator("#ft-report")).to_contain_text("pairs, validating on")
    run = page.locator("#ft-run-name textarea").input_value()
    fill_hyperparameters(page, {"ft-max-steps": "2", "ft-max-length": "96", "ft-eval-steps": "2", "ft-save-steps": "2"})
    page.locator("#ft-start").click()
    expect(page.locator("#ft-status")).to_contain_text(f"Started {run}")
    expect(page.locator("#ft-progress")).to_contain_text(f"{run}: finished, step 2 of 2", timeout=180_000)
    expect(page.locator("#ft-rewards .js-plotly-plot")).to_be_visible()
    expect(page.locator("#ft-rewards")).to_contain_text("reward accuracy")
    meta = json.loads((finetune_app.settings.adapters_dir / run / "workbench.json").read_text())
    assert meta["method"] == "dpo" and meta["datasets"]["train"]["shape"] == "preferences"


def test_dpo_from_the_stores_votes_then_send_to_the_arena(finetune_app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from workbench.store import Store

    with Store.open(finetune_app.settings) as store:
        for i in range(8):
            question = f"What is {i} times two?"
            good = store.add_generation("polite", question, f"Happy to help! {2 * i}.", {"temperature": 0})
            bad = store.add_generation("plain", question, f"{2 * i}.", {"temperature": 0})
            store.add_vote(good, bad, "a", rater="alice")
        store.add_vote(good, bad, "tie", rater="bob")
    client = Client(finetune_app.url, verbose=False)
    args = TINY_RUN | {"upload": None, "dataset": None, "val_upload": None, "val_fraction": 0.25, "max_length": 96}
    filters = {"vote_checkpoints": ["polite", "plain"], "vote_min_agreement": 0.6}
    with pytest.raises(AppError, match="Too few usable pairs"):  # the filters are applied: none between these two
        only = {"vote_checkpoints": ["polite", "nobody"]}
        client.predict(**args, **only, run_name="x", token=TOKEN, method="dpo", from_votes=True, api_name="/train")
    message, _, _ = client.predict(
        **args, **filters, run_name="from-votes", token=TOKEN, method="dpo", from_votes=True, api_name="/train"
    )
    assert "Started **from-votes**" in message
    status = _wait_for(finetune_app.settings, "from-votes", lambda s: not s.active)
    assert (status.status, status.adapter) == ("finished", "from-votes")
    meta = json.loads((finetune_app.settings.adapters_dir / "from-votes" / "workbench.json").read_text())
    assert meta["method"] == "dpo" and meta["votes"]["counts"] == {"votes": 9, "ties": 1, "pairs": 8}
    assert meta["votes"]["filters"] | {"raters": []} == {
        "checkpoints": ["polite", "plain"],
        "raters": [],
        "same_settings": False,
        "min_agreement": 0.6,
        "rater_kind": "humans",
        "origin": "all",
        "since": None,
        "until": None,
        "source": "arena",
        "unreviewed": False,  # pairs on prompts the owner gave (here: typed into the store) or two raters agreed on
    }
    assert (meta["examples"]["train"], meta["examples"]["validation"]) == (6, 2)

    sent = client.predict(run_name="from-votes", token=TOKEN, api_name="/send_to_arena")
    assert "**from-votes** and its parent **base** answered 8 Arena prompts (16 new outputs)" in sent
    with Store.open(finetune_app.settings) as store:
        item = store.next_pair_for("zoe")  # the new pairs have no vote yet: they come first
    assert item is not None and "from-votes" in {item.a.checkpoint, item.b.checkpoint}
