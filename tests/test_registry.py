"""The registry: base models from the embedded wheel, folders, hub ids and registry.yaml; adapters on disk."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.registry import (
    EMBEDDED_NAME,
    BaseModel,
    embedded_base,
    find_adapter,
    list_adapters,
    list_bases,
    resolve_base,
    same_base,
)

BASE = BaseModel(EMBEDDED_NAME, "/x/SmolLM2-135M-Instruct.Q4_1.gguf", "gguf")


def write_adapter(folder, base_name=EMBEDDED_NAME, weights=True):
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "base_model_name_or_path": base_name, "r": 4}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    if weights:
        save_file({"lora_A": np.zeros((4, 8), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    return folder


def test_embedded_model_is_found_without_importing_its_package():
    base = embedded_base()
    assert base.usable and base.kind == "gguf" and base.source.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert resolve_base(Settings()).name == EMBEDDED_NAME


def test_adapters_are_listed_with_status_and_reasons(tmp_path):
    s = Settings(home=tmp_path)
    root = s.adapters_dir
    write_adapter(root / "good")
    write_adapter(root / "run" / "checkpoint-20")
    write_adapter(root / "run" / "checkpoint-5")
    write_adapter(root / "other-base", base_name="meta-llama/Llama-3.2-1B")
    write_adapter(root / "no-weights", weights=False)
    trunc = write_adapter(root / "truncated")
    data = (trunc / "adapter_model.safetensors").read_bytes()
    (trunc / "adapter_model.safetensors").write_bytes(data[:-10])
    bad_json = write_adapter(root / "bad-json")
    (bad_json / "adapter_config.json").write_text("{not json")
    write_adapter(root / ".tmp-run-123")  # a checkpoint still being written: never listed
    (root / "in-progress").mkdir()  # a run that has written no adapter yet: not listed
    (root / "in-progress" / "train_log.jsonl").write_text("")

    found = {a.name: a for a in list_adapters(s, BASE)}
    assert set(found) == {
        "good",
        "run/checkpoint-5",
        "run/checkpoint-20",
        "other-base",
        "no-weights",
        "truncated",
        "bad-json",
    }
    assert [a.name for a in list_adapters(s, BASE) if a.run == "run"] == ["run/checkpoint-5", "run/checkpoint-20"]
    assert found["run/checkpoint-20"].step == 20 and found["good"].usable
    assert "trained for base model 'meta-llama/Llama-3.2-1B'" in found["other-base"].reason
    assert "adapter_model.safetensors is missing" in found["no-weights"].reason
    assert "truncated" in found["truncated"].reason
    assert "not valid JSON" in found["bad-json"].reason
    assert find_adapter(s, "run/checkpoint-20", BASE).usable
    with pytest.raises(WorkbenchError, match="no adapter called 'nope'"):
        find_adapter(s, "nope", BASE)
    with pytest.raises(WorkbenchError, match=r"starts with '\.'"):
        find_adapter(s, "../../etc", BASE)  # names never escape the adapters folder (tests/safety has the rest)
    with pytest.raises(WorkbenchError, match="cannot be used: trained for base model"):
        find_adapter(s, "other-base", BASE)


def test_same_base_matches_names_paths_and_hub_ids():
    assert same_base(EMBEDDED_NAME, BASE)
    assert same_base(f"/somewhere/models/base/{EMBEDDED_NAME}/", BASE)
    assert not same_base("HuggingFaceTB/SmolLM2-360M-Instruct", BASE)
    hub = BaseModel("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "hub")
    assert same_base("Qwen/Qwen2.5-0.5B-Instruct", hub) and not same_base("Other/Qwen2.5-0.5B-Instruct", hub)


def test_bases_from_registry_yaml_folders_and_offline_hub_ids(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    s = Settings(home=tmp_path)
    s.models_dir.mkdir(parents=True)
    s.registry_file.write_text(
        f"default: mine\nmodels:\n  - name: mine\n    source: {folder}\n"
        "  - name: remote\n    source: SomeOrg/not-downloaded-model\n"
    )
    bases = {b.name: b for b in list_bases(s)}
    assert bases["mine"].usable and bases["mine"].kind == "folder"
    assert not bases["remote"].usable and "not on disk and the hub is offline" in bases["remote"].reason
    assert resolve_base(s).name == "mine"  # the registry's default
    with pytest.raises(WorkbenchError, match="not on disk and the hub is offline"):
        resolve_base(s, "remote")
    with pytest.raises(WorkbenchError, match="neither a model folder"):
        resolve_base(Settings(home=tmp_path, model="./missing-folder"))


def test_a_broken_registry_file_gets_one_sentence(tmp_path):
    s = Settings(home=tmp_path)
    s.models_dir.mkdir(parents=True)
    s.registry_file.write_text("models: [\n")
    with pytest.raises(WorkbenchError, match="not valid YAML"):
        list_bases(s)
    s.registry_file.write_text("models:\n  - name: x\n")
    with pytest.raises(WorkbenchError, match="needs a 'source'"):
        list_bases(s)
