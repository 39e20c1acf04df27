"""Names that reach the file system: every input that names a run, checkpoint, adapter, dataset or export target
refuses `..`, absolute paths, dot-folders and symlinks that lead outside its folder, with one sentence each."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import find_adapter, list_adapters
from workbench.safety.names import check_name, export_target, inside, within
from workbench.training import jobs
from workbench.training.config import RunPaths
from workbench.ui import finetune_actions

BAD = ["../outside", "/etc", "..", ".trainer", "good/../../outside", "~root", "escape", "good/.trainer"]


def adapter(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x"}))
    save_file({"lora_A": np.zeros((2, 2), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "train_log.jsonl").write_text(json.dumps({"event": "log", "time": 1, "step": 1, "train_loss": 9}) + "\n")


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """An adapters folder with a good run, a hidden folder, and a symlink out to a folder that looks like a run;
    a repository with a shipped dataset and one that is a symlink out."""
    settings = Settings(home=tmp_path / "home")
    outside = tmp_path / "outside"
    adapter(outside)
    adapter(settings.adapters_dir / "good" / "checkpoint-10")
    adapter(settings.adapters_dir / "good" / ".trainer")
    (settings.adapters_dir / "escape").symlink_to(outside)
    repo = tmp_path / "repo"
    (repo / "data" / "ok").mkdir(parents=True)
    (repo / "data" / "ok" / "train.jsonl").write_text("{}\n")
    (repo / "data" / "escape").mkdir()
    (repo / "data" / "escape" / "train.jsonl").symlink_to(outside / "train_log.jsonl")
    monkeypatch.setattr(finetune_actions, "REPO_ROOT", repo)
    monkeypatch.setattr(finetune_actions, "DATA_DIR", repo / "data")
    return SimpleNamespace(settings=settings, outside=outside, repo=repo)


NAME_INPUTS = {
    "RunPaths.of": lambda s, name: RunPaths.of(s, name),
    "run_status": lambda s, name: jobs.run_status(s, name),
    "loss_curves": lambda s, name: jobs.loss_curves(s, name),
    "cancel_training": lambda s, name: jobs.cancel_training(s, name),
    "resume_training": lambda s, name: jobs.resume_training(s, name),
    "find_adapter": lambda s, name: find_adapter(s, name),
    "find_adapter checkpoint": lambda s, name: find_adapter(s, f"{name}/checkpoint-10"),
}


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("entry", NAME_INPUTS)
def test_every_name_input_refuses_escapes(tree, entry, bad):
    with pytest.raises(WorkbenchError) as caught:
        NAME_INPUTS[entry](tree.settings, bad)
    sentence = str(caught.value)
    assert sentence.endswith(".") and "\n" not in sentence
    assert str(tree.outside) not in sentence  # visitors read these: no server paths


def test_good_names_still_work_and_are_normalised(tree):
    s = tree.settings
    assert jobs.loss_curves(s, "good")["train"] == []  # its own log (none yet), not the outside one
    assert jobs.run_status(s, " good ").run == "good"
    assert find_adapter(s, "good//checkpoint-10").name == "good/checkpoint-10"  # one spelling, one cache key
    assert find_adapter(s, "good/checkpoint-10/").path == s.adapters_dir / "good" / "checkpoint-10"
    assert not jobs.cancel_training(s, "good")
    assert RunPaths.of(s, "new-run").run_dir == s.adapters_dir / "new-run"  # a run not made yet is fine
    listed = [a.name for a in list_adapters(s)]
    assert "good/checkpoint-10" in listed and "escape" not in listed  # a symlink out is never offered


def test_runs_listed_skip_hand_made_folders_and_never_follow_them(tree):
    (tree.settings.adapters_dir / "with space").mkdir()
    (tree.settings.adapters_dir / "with space" / "train_log.jsonl").write_text("")
    (tree.settings.adapters_dir / "good" / "train_log.jsonl").write_text("")
    names = [r.run for r in jobs.list_runs(tree.settings)]
    assert "with space" not in names and "good" in names


@pytest.mark.parametrize("bad", ["../data/ok/train.jsonl", "/etc/passwd", "data/escape/train.jsonl", "data/.x/a.jsonl"])
def test_the_shipped_dataset_choice_is_one_of_the_shipped_files(tree, bad):
    ctx = SimpleNamespace(settings=tree.settings)
    assert finetune_actions._dataset_path(ctx, None, "data/ok/train.jsonl") == str(tree.repo / "data/ok/train.jsonl")
    with pytest.raises(WorkbenchError, match=r"not one of the shipped datasets|not inside"):
        finetune_actions._dataset_path(ctx, None, bad)


def test_an_upload_must_be_a_file_the_app_received(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    received = tmp_path / "uploads" / "abc" / "mine.jsonl"
    received.parent.mkdir(parents=True)
    received.write_text("{}\n")
    ctx = SimpleNamespace(settings=tree.settings)
    assert finetune_actions._dataset_path(ctx, str(received), None) == str(received)
    (tmp_path / "uploads" / "link.jsonl").symlink_to(tree.outside / "train_log.jsonl")
    for other in (str(tree.outside / "train_log.jsonl"), str(tmp_path / "uploads" / "link.jsonl"), "../x.jsonl"):
        with pytest.raises(WorkbenchError, match="not a file this app received"):
            finetune_actions._dataset_path(ctx, other, None)


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        ("../votes.csv", "'..' part"),
        ("out/../../votes.csv", "'..' part"),
        (".bashrc", "starts with '.'"),
        ("", "is needed"),
        ("link.csv", "symbolic link"),
    ],
)
def test_export_targets(tmp_path, monkeypatch, given, refusal):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    assert export_target("out/votes.csv", "export file") == tmp_path / "out" / "votes.csv"
    assert export_target(str(tmp_path / "abs.csv"), "export file") == tmp_path / "abs.csv"  # the operator's CLI
    with pytest.raises(WorkbenchError, match=refusal):
        export_target(given, "export file")


def test_the_validator_itself(tmp_path):
    assert check_name("a//b/", "adapter", parts=2) == "a/b"
    for bad in ("a/b/c", "a b", "-x", "a\\..\\b", "C:\\x", 3, None, "x" * 101):
        with pytest.raises(WorkbenchError):
            check_name(bad, "adapter", parts=2)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "in").symlink_to(tmp_path)
    with pytest.raises(WorkbenchError, match="leads outside the adapters folder"):
        inside(tmp_path / "root", "in", "adapter", folder="the adapters folder")
    with pytest.raises(WorkbenchError, match="not inside"):
        within(tmp_path / "root", "in/x", "dataset")


@pytest.mark.parametrize("command", [["export", "--what", "votes"], ["export-adapter", "good"]])
@pytest.mark.parametrize("out", ["../x.csv", ".hidden", "link"])
def test_cli_export_targets_refused_with_one_sentence(tree, tmp_path, monkeypatch, capsys, command, out):
    from workbench.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_HOME", str(tree.settings.home))
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert main([*command, "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert any(words in err for words in ("'..' part", "starts with '.'", "symbolic link"))
    assert not (tmp_path.parent / "x.csv").exists() and not (tmp_path / "elsewhere").exists()
