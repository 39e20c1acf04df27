"""Cheap timers: the Fine-tune tab's refresh, the chat tab's adapter scan and the dataset check on page load do no
parsing when nothing changed, and see a change at once."""

import inspect
import json
import os
import time

import gradio as gr
import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.config import Settings
from workbench.training import jobs, runlog
from workbench.training.config import RunPaths

TOKEN = "timers-token"


@pytest.fixture
def parsed(monkeypatch):
    """The bytes each call to the log parser was given."""
    calls: list[bytes] = []
    real = runlog._parse_lines

    def counting(data: bytes):
        calls.append(data)
        return real(data)

    monkeypatch.setattr(runlog, "_parse_lines", counting)
    return calls


def event(**fields) -> str:
    return json.dumps({"time": time.time(), **fields}) + "\n"


def append(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def runs(tmp_path):
    settings = Settings(home=tmp_path, admin_token=TOKEN)
    for name in ("one", "two"):
        paths = RunPaths.of(settings, name)
        paths.run_dir.mkdir(parents=True)
        paths.log_file.write_text(
            event(event="start", step=0, max_steps=4) + event(event="log", step=1, train_loss=2.0)
        )
    return settings


def look(settings):
    """What one Fine-tune refresh reads: every run's status, then the chosen run's status and curves."""
    names = [r.run for r in jobs.list_runs(settings)]
    return names, jobs.run_status(settings, "one"), jobs.loss_curves(settings, "one")


def test_a_log_is_parsed_once_then_only_its_new_lines(runs, parsed):
    look(runs)
    assert len(parsed) == 2  # each run's log, once
    parsed.clear()
    for _ in range(3):
        _, status, curves = look(runs)
    assert parsed == [] and status.step == 1 and curves["train"] == [(1, 2.0)]

    line = event(event="log", step=2, train_loss=1.5)
    append(RunPaths.of(runs, "one").log_file, line)
    _, status, curves = look(runs)
    assert parsed == [line.encode()]  # the new line only
    assert status.step == 2 and curves["train"] == [(1, 2.0), (2, 1.5)]


def test_torn_lines_rewrites_and_replacements_are_read_right(runs, parsed):
    log = RunPaths.of(runs, "two").log_file
    assert len(runlog.read_log(log)) == 2
    torn = event(event="log", step=2, train_loss=1.0)
    append(log, torn[:10])  # a writer killed mid-line
    assert len(runlog.read_log(log)) == 2
    append(log, torn[10:])
    assert [r.get("step") for r in runlog.read_log(log)] == [0, 1, 2]
    log.write_text(event(event="prepare", pid=1) * 5)  # rewritten in place, longer than before: read again
    assert [r["event"] for r in runlog.read_log(log)] == ["prepare"] * 5
    runlog.RunLog(log).rewind(0)  # a resume's rewind replaces the file
    assert [r["event"] for r in runlog.read_log(log)] == ["prepare"] * 5
    os.remove(log)
    assert runlog.read_log(log) == []


def _finetune_refresh(settings):
    from workbench.ui.context import AppContext
    from workbench.ui.finetune import build_finetune_tab

    ctx = AppContext(settings)
    with gr.Blocks() as demo:
        build_finetune_tab(ctx)
    fns = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "refresh_all"]  # losses and rewards
    assert fns and all(f.queue for f in fns), "the refresh runs in the queue"
    fn = fns[0].fn
    token = (TOKEN,) if len(inspect.signature(fn).parameters) > 2 else ()  # the admin token, where it is asked for
    return lambda run, shown: fn(run, shown, *token)[:4]  # runs, loss chart, progress, what is shown


def test_the_fine_tune_refresh_parses_nothing_when_nothing_changed(runs, parsed):
    refresh = _finetune_refresh(runs)
    _, _, progress, shown = refresh("one", None)
    assert "**one**" in progress and shown
    parsed.clear()
    again = refresh("one", shown)
    assert parsed == [] and all(isinstance(part, type(gr.skip())) for part in again[:3])

    append(RunPaths.of(runs, "one").log_file, event(event="log", step=3, train_loss=1.0))
    _, _, progress, _ = refresh("one", shown)
    assert len(parsed) == 1 and "step 3 of 4" in progress
    _, _, refused, _ = refresh("../one", shown)  # any text can arrive: one sentence back
    assert "starts with '.'" in refused


def _adapter(folder, base_name):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": base_name}))
    save_file({"lora_A": np.zeros((2, 2), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))


def test_the_chat_timer_scans_adapters_only_when_the_folder_changed(tmp_path, monkeypatch):
    from workbench.ui import context

    ctx = context.AppContext(Settings(home=tmp_path))
    base = ctx.base().name
    _adapter(ctx.settings.adapters_dir / "first", base)
    scans = []
    real = context.list_adapters
    monkeypatch.setattr(context, "list_adapters", lambda *a: scans.append(1) or real(*a))
    for _ in range(3):  # three ticks of the timer, each asking for both
        assert ctx.checkpoint_choices() == ["base", "first"] and [a.name for a in ctx.adapters()] == ["first"]
    assert len(scans) == 1
    _adapter(ctx.settings.adapters_dir / "first" / "checkpoint-2", base)  # a checkpoint lands
    assert ctx.checkpoint_choices() == ["base", "first", "first/checkpoint-2"] and len(scans) == 2
    weights = ctx.settings.adapters_dir / "first" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])  # broken in place
    assert ctx.checkpoint_choices() == ["base", "first/checkpoint-2"] and "truncated" in ctx.adapters()[0].reason


@pytest.mark.slow
def test_the_shipped_dataset_is_validated_once_per_file_state(tiny_settings, tmp_path, monkeypatch):
    from workbench.training import prepare
    from workbench.ui import finetune_actions
    from workbench.ui.context import AppContext

    calls = []
    real = prepare.prepare_data
    monkeypatch.setattr(prepare, "prepare_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    ctx = AppContext(tiny_settings)
    tokenizers = finetune_actions.Tokenizers()
    shipped = finetune_actions.shipped_datasets()[0]
    check = lambda: finetune_actions.validate(ctx, tokenizers, None, shipped, None, 0.1, 256, 42, None)  # noqa: E731
    first = [check() for _ in range(3)]  # three page loads
    report = [text.split("Estimated peak memory")[0] for text, _ in first]  # the estimate reads free memory anew
    assert len(calls) == 1 and report[0] == report[2] and first[0][0].startswith("**Validation report**")
    assert "Estimated peak memory " in first[0][0] and " GB is available." in first[0][0]
    check_other = finetune_actions.validate(ctx, tokenizers, None, shipped, None, 0.2, 256, 42, None)
    assert len(calls) == 2 and check_other[0] != first[0][0]
