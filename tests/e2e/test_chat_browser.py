"""The Chat tab in a real browser: type, watch the answer stream, move sliders, stop, screenshot."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RECORD_BOT_TEXTS = """() => { window.__botTexts = [];
  new MutationObserver(() => { const b = document.querySelectorAll('#chatbot [data-testid="bot"]');
    if (!b.length) return; const t = b[b.length-1].innerText;
    if (window.__botTexts.at(-1) !== t) window.__botTexts.push(t); })
  .observe(document.querySelector('#chatbot'), {subtree: true, childList: true, characterData: true}); }"""


def set_slider(page, elem_id, value):
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    expect(box).to_have_value(str(value))


def test_chat_streams_and_sliders_apply(page, gradio_app, artifacts):
    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    set_slider(page, "temperature", 0)
    set_slider(page, "max-new-tokens", 40)
    page.locator("#system-prompt textarea").fill("Answer in one sentence.")
    page.evaluate(RECORD_BOT_TEXTS)
    box.fill("What is the capital of France?")
    box.press("Enter")
    bot = page.locator('#chatbot [data-testid="bot"]').last
    expect(bot).to_contain_text("Paris")
    stats = page.locator("#stats")
    expect(stats).to_contain_text("stopped:")
    assert len(page.evaluate("window.__botTexts")) >= 2  # partial answers were shown while streaming
    assert "tok/s" in stats.inner_text() and "first token" in stats.inner_text()
    expect(box).to_have_value("")
    page.screenshot(path=artifacts / "chat_greedy.png", full_page=True)


def test_a_newcomers_first_question_with_the_defaults(page, gradio_app, artifacts):
    """The README's shot: the page as it opens (the default preset, no system prompt), an example prompt
    clicked and sent. Only the seed is fixed (Advanced), so the sampled answer is the same on every run; the
    example prompts are the ones the defaults answered right on every seed measured (bench demo_quality)."""
    from workbench.generation import presets
    from workbench.ui.chat import EXAMPLES

    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    expect(page.locator("#preset input")).to_have_value(presets.DEFAULT_PRESET)
    page.locator("#advanced").click()  # left open: the shot shows every default
    page.locator("#seed input").fill("0")
    page.locator("#chat-examples").get_by_text(EXAMPLES[0], exact=True).click()
    expect(box).to_have_value(EXAMPLES[0])
    box.press("Enter")
    expect(page.locator("#stats")).to_contain_text("stopped:")
    expect(page.locator('#chatbot [data-testid="bot"]').last).to_contain_text("Tokyo")
    page.screenshot(path=artifacts / "chat.png", full_page=True)


def test_stop_button_stops_generation(page, gradio_app, artifacts):
    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    set_slider(page, "max-new-tokens", 600)
    box.fill("Write a very long story about a dragon who learns to cook.")
    box.press("Enter")
    bot = page.locator('#chatbot [data-testid="bot"]').last
    expect(bot).to_contain_text(" ")  # streaming has begun
    page.locator("#stop").click()
    expect(page.locator("#stats")).to_contain_text("stopped: cancelled")
    page.locator("#advanced").click()  # show the advanced settings in the screenshot
    expect(page.locator("#top-p")).to_be_visible()
    page.screenshot(path=artifacts / "chat_stopped.png", full_page=True)


def test_preset_fills_the_sliders_and_the_token_view_reads_the_last_reply(page, gradio_app, artifacts):
    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    page.locator("#preset input").click()
    page.get_by_role("option", name="precise").click()
    expect(page.locator("#temperature input[type=number]")).to_have_value("0.2")
    set_slider(page, "max-new-tokens", 12)
    box.fill("What is the capital of France?")
    box.press("Enter")
    expect(page.locator("#stats")).to_contain_text("stopped:")
    page.locator("#token-view").click()
    page.locator("#show-tokens").click()
    spans = page.locator("#token-html .wb-token")
    expect(spans.first).to_be_visible(timeout=120_000)
    reply = page.locator('#chatbot [data-testid="bot"]').last.inner_text()
    assert "".join(spans.all_inner_texts()).replace("↵", "").strip() in reply.replace("\n", "")
    assert "top alternatives" in spans.first.get_attribute("title")
    page.screenshot(path=artifacts / "chat_tokens.png", full_page=True)


def test_the_token_view_shows_what_an_adapter_changed(page, gradio_app, artifacts, dash_checkpoints):
    adapter = dash_checkpoints[1]
    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    page.locator("#checkpoint input").click()
    page.get_by_role("option", name=adapter).click()
    expect(page.locator("#checkpoint input")).to_have_value(adapter)
    set_slider(page, "max-new-tokens", 12)
    box.fill("What is the capital of France?")
    box.press("Enter")
    expect(page.locator("#stats")).to_contain_text("stopped:")
    page.locator("#token-view").click()
    page.locator("#token-against input").click()  # filled with this caller's checkpoints when opened
    expect(page.get_by_role("option", name=dash_checkpoints[2])).to_be_visible()
    page.get_by_role("option", name="base", exact=True).click()
    page.locator("#show-shift").click()
    spans = page.locator("#token-html .wb-shift")
    expect(spans.first).to_be_visible(timeout=120_000)
    reply = page.locator('#chatbot [data-testid="bot"]').last.inner_text()
    assert "".join(spans.all_inner_texts()).replace("↵", "").strip() in reply.replace("\n", "")
    title = spans.first.get_attribute("title")
    assert f"under {adapter}" in title and "\n  base: " in title and f"\n  {adapter}: " in title
    expect(page.locator("#token-html")).to_contain_text(f"more likely under {adapter}")
    page.locator("#token-view").screenshot(path=artifacts / "chat_token_shift_view.png")
    page.screenshot(path=artifacts / "chat_token_shift.png", full_page=True)
    against = page.locator("#token-against input")  # the same checkpoint twice: one sentence where the tokens were
    against.fill(adapter)
    against.press("Enter")
    page.locator("#show-shift").click()
    expect(page.locator("#token-html")).to_contain_text(
        f"Choose two different checkpoints to compare; both are {adapter}."
    )


def notice_says(page, sentence: str) -> None:
    """The sentence shows under the message box, and no bare "Error" badge or pop-up is anywhere on the page."""
    expect(page.locator("#chat-notice")).to_have_text(sentence)
    assert "Error" not in page.locator("body").inner_text()


def test_every_mistake_is_answered_in_words_under_the_message_box(page, gradio_app, artifacts):
    from workbench.generation import presets
    from workbench.generation.settings import EMPTY_MESSAGE
    from workbench.ui.chat import EXAMPLES, NOTHING_TO_UNDO

    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    expect(page.locator("#preset input")).to_have_value(presets.DEFAULT_PRESET)  # what the sliders hold
    page.locator("#send").click()
    notice_says(page, EMPTY_MESSAGE)
    page.locator("#clear").click()
    expect(page.locator("#chat-notice")).to_have_text("")
    box.press("Enter")
    notice_says(page, EMPTY_MESSAGE)
    for button in ("#undo", "#regenerate"):
        page.locator("#clear").click()
        page.locator(button).click()
        notice_says(page, NOTHING_TO_UNDO)
    # an example prompt fills the box; its answer clears the notice; Undo takes it back with its statistics
    page.locator("#chat-examples").get_by_text(EXAMPLES[0]).click()
    expect(box).to_have_value(EXAMPLES[0])
    set_slider(page, "max-new-tokens", 8)
    page.locator("#send").click()
    expect(page.locator("#stats")).to_contain_text("stopped:")
    expect(page.locator("#chat-notice")).to_have_text("")
    page.locator("#undo").click()
    expect(page.locator("#stats")).to_have_text("")
    expect(box).to_have_value(EXAMPLES[0])
    expect(page.locator('#chatbot [data-testid="bot"]')).to_have_count(0)
    # a mistake found by the queued reply (a checkpoint that does not exist) is said there too; the message stays
    checkpoint = page.locator("#checkpoint input")
    checkpoint.fill("no-such-adapter")
    checkpoint.press("Enter")
    box.press("Enter")
    notice_says(page, "There is no adapter called 'no-such-adapter'; `python -m workbench models` lists them.")
    expect(box).to_have_value(EXAMPLES[0])
    page.screenshot(path=artifacts / "chat_mistakes.png", full_page=True)


def test_an_edited_reply_is_kept_as_a_correction_and_exported(page, gradio_app, artifacts, tmp_path):
    """The owner (this machine) edits the model's reply in place: the page shows the edit, and the store's export
    has it as an SFT line (the conversation answered with the edit) and a pair (the edit over the original)."""
    import json
    import subprocess
    import sys

    from workbench.ui.chat import EDIT_NOTE

    page.goto(gradio_app.url, wait_until="domcontentloaded")
    box = page.locator("#msg textarea")
    expect(box).to_be_editable()
    expect(page.locator("#edit-note")).to_contain_text(EDIT_NOTE.removeprefix("<small>").removesuffix("</small>"))
    set_slider(page, "temperature", 0)
    set_slider(page, "max-new-tokens", 8)
    box.fill("What is the capital of France?")
    box.press("Enter")
    expect(page.locator("#stats")).to_contain_text("stopped:")
    bot = page.locator('#chatbot [data-testid="bot"]').last
    original = bot.inner_text().strip()
    corrected = "The capital of France is Paris (edited in the browser)."
    bot.hover()
    page.locator("#chatbot").get_by_role("button", name="Edit").last.click()
    editor = page.locator("#chatbot textarea").last
    editor.fill(corrected)
    page.locator("#chatbot").get_by_role("button", name="Submit").last.click()
    expect(bot).to_have_text(corrected)
    expect(page.locator("#chat-notice")).to_have_text("")
    page.screenshot(path=artifacts / "chat_edited.png", full_page=True)

    def export(*args: str) -> list[dict]:
        out = tmp_path / f"{args[1]}.jsonl"
        command = [sys.executable, "-m", "workbench", "export", *args, "--out", str(out)]
        subprocess.run(command, env=gradio_app.env, check=True, capture_output=True, timeout=120)
        return [json.loads(line) for line in out.read_text().splitlines()]

    (sft,) = [r for r in export("--what", "corrections") if r["messages"][-1]["content"] == corrected]
    assert sft["messages"][-2] == {"role": "user", "content": "What is the capital of France?"}
    pairs = export("--what", "preferences", "--source", "edit")
    (pair,) = [p for p in pairs if p["chosen"] == [{"role": "assistant", "content": corrected}]]
    assert pair["rejected"][0]["content"].strip() == original and pair["source"] == "edit"
    assert pair["prompt"][-1] == {"role": "user", "content": "What is the capital of France?"}
