"""Presets: shipped and user presets, saving one with an adapter as generation_config.json (read back by
transformers' GenerationConfig), and the CLI's layering (defaults < checkpoint < --preset < flags).

Run: .venv/bin/python -m pytest -q tests/generation/test_presets.py
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from workbench.cli import build_parser, main
from workbench.cli.common import generation_from
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation import presets
from workbench.generation.settings import GenerationSettings


@pytest.fixture
def store(tmp_path, monkeypatch) -> Settings:
    """A model store with one adapter folder that the registry accepts (config + safetensors)."""
    folder = tmp_path / "models" / "adapters" / "run"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x"}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_MODELS_DIR", str(tmp_path / "models"))
    return Settings(home=tmp_path, models_dir=tmp_path / "models")


def test_shipped_presets_differ_and_order_from_precise_to_creative(store):
    shipped = presets.presets(store)
    assert list(shipped)[:3] == ["precise", "balanced", "creative"]
    temps = [shipped[n].temperature for n in ("precise", "balanced", "creative")]
    assert temps == sorted(temps) and len(set(temps)) == 3
    assert shipped["balanced"] == GenerationSettings()


def test_user_preset_saved_listed_and_seedless(store):
    path = presets.save_preset(store, "demo", GenerationSettings(temperature=0.4, top_k=12, seed=7, stop=["###"]))
    assert path == store.models_dir / "presets.json"
    got = presets.preset(store, "demo")
    assert (got.temperature, got.top_k, got.seed, got.stop) == (0.4, 12, None, ("###",))
    assert list(presets.presets(store)) == ["precise", "balanced", "creative", "demo"]


@pytest.mark.parametrize(
    ("name", "needle"), [("precise", "shipped preset"), ("", "1 to 40"), ("../x", "1 to 40"), ("a" * 41, "1 to 40")]
)
def test_bad_preset_names_get_one_sentence(store, name, needle):
    with pytest.raises(WorkbenchError, match=needle):
        presets.save_preset(store, name, GenerationSettings())


def test_unknown_preset_and_broken_file_get_one_sentence(store):
    with pytest.raises(WorkbenchError, match="choose one of precise, balanced, creative"):
        presets.preset(store, "nope")
    (store.models_dir / "presets.json").write_text("{not json")
    with pytest.raises(WorkbenchError, match="not a readable JSON file"):
        presets.presets(store)
    (store.models_dir / "presets.json").write_text(json.dumps({"hot": {"temperature": -1}}))
    with pytest.raises(WorkbenchError, match=r"Preset 'hot'.*Temperature must be 0 or more"):
        presets.presets(store)


@pytest.mark.parametrize(
    "gen",
    [
        GenerationSettings(temperature=0.35, top_p=0.8, top_k=20, repetition_penalty=1.15, max_new_tokens=90),
        GenerationSettings(temperature=1.3, top_p=1.0, top_k=0, stop=["\n\n", "User:"]),
        GenerationSettings(temperature=0.0, max_new_tokens=40, repetition_penalty=1.2),
        GenerationSettings(temperature=0.7, adapter_strength=0.6),
    ],
    ids=["sampled", "top-k-off-with-stops", "greedy", "adapter-strength"],
)
def test_checkpoint_settings_round_trip_through_transformers_generation_config(store, gen):
    from transformers import GenerationConfig

    path = presets.save_to_checkpoint(store, "run", gen)
    assert path.name == "generation_config.json"
    config = GenerationConfig.from_pretrained(path.parent)
    assert config.do_sample is not gen.greedy
    assert config.max_new_tokens == gen.max_new_tokens
    assert config.repetition_penalty == pytest.approx(gen.repetition_penalty)
    if not gen.greedy:
        assert (config.temperature, config.top_p, config.top_k) == (gen.temperature, gen.top_p, gen.top_k)
    assert list(config.stop_strings or []) == list(gen.stop)
    back = presets.checkpoint_default(store, "run")
    compared = ("temperature", "max_new_tokens", "repetition_penalty", "stop", "adapter_strength")
    compared += () if gen.greedy else ("top_p", "top_k")
    assert {k: getattr(back, k) for k in compared} == {k: getattr(gen, k) for k in compared}
    # transformers can write the file back out and it still reads as the same settings
    config.save_pretrained(path.parent)
    again = presets.checkpoint_default(store, "run")
    assert {k: getattr(again, k) for k in compared} == {k: getattr(gen, k) for k in compared}


def test_base_remote_and_unknown_checkpoints_are_refused(store):
    gen = GenerationSettings()
    with pytest.raises(WorkbenchError, match="base model's folder"):
        presets.save_to_checkpoint(store, "base", gen)
    with pytest.raises(WorkbenchError, match="remote model"):
        presets.save_to_checkpoint(store, "remote:gpt", gen)
    with pytest.raises(WorkbenchError, match="no adapter called"):
        presets.save_to_checkpoint(store, "missing", gen)
    assert presets.checkpoint_default(store, "base") is None
    assert presets.checkpoint_default(store, "run") is None  # nothing saved yet


def test_cli_layers_defaults_checkpoint_preset_and_flags(store):
    presets.save_to_checkpoint(store, "run", GenerationSettings(temperature=0.1, top_k=5, max_new_tokens=30))

    def settings_for(*argv):
        args = build_parser().parse_args(["chat", *argv])
        return generation_from(args, store, checkpoint=args.adapter)

    assert settings_for() == GenerationSettings()
    from_checkpoint = settings_for("--adapter", "run")
    assert (from_checkpoint.temperature, from_checkpoint.top_k, from_checkpoint.max_new_tokens) == (0.1, 5, 30)
    assert settings_for("--adapter", "run", "--preset", "creative") == presets.SHIPPED["creative"]
    typed = settings_for("--adapter", "run", "--preset", "creative", "--top-k", "7", "--stop", "END")
    assert typed == presets.SHIPPED["creative"].replace(top_k=7, stop=["END"])


def test_presets_command_lists_saves_and_writes_the_checkpoint(store, capsys):
    assert main(["presets", "--save", "mine", "--preset", "precise", "--temperature", "0.5"]) == 0
    assert main(["presets", "--checkpoint", "run", "--preset", "mine"]) == 0
    capsys.readouterr()
    assert main(["presets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["presets"]}
    assert rows["mine"]["origin"] == "yours" and rows["mine"]["temperature"] == 0.5
    assert rows["mine"]["top_k"] == presets.SHIPPED["precise"].top_k
    assert presets.checkpoint_default(store, "run").temperature == 0.5
    assert main(["presets", "--save", "x", "--preset", "nope"]) == 2
    assert "no preset called 'nope'" in capsys.readouterr().err


def test_min_p_goes_through_generation_config_and_the_store_hash_stays_when_it_is_off():
    from workbench.store.records import normalize_settings

    gen = GenerationSettings(temperature=0.9, min_p=0.05)
    assert presets.to_generation_config(gen)["min_p"] == 0.05
    assert presets.from_generation_config(presets.to_generation_config(gen)) == gen
    assert "min_p" not in presets.to_generation_config(GenerationSettings())
    # settings stored before min-p existed have no min_p key: off, they hash as before
    assert "min_p" not in normalize_settings(GenerationSettings()) and normalize_settings(gen)["min_p"] == 0.05


def test_adapter_strength_goes_through_presets_and_generation_config_only_when_it_is_not_1(store):
    from workbench.store.records import normalize_settings, settings_label

    gen = GenerationSettings(adapter_strength=0.5)
    assert presets.to_generation_config(gen)["adapter_strength"] == 0.5
    assert "adapter_strength" not in presets.to_generation_config(GenerationSettings())
    assert presets.from_generation_config({"do_sample": False}).adapter_strength == 1.0
    presets.save_preset(store, "half", gen)
    assert presets.preset(store, "half").adapter_strength == 0.5
    # settings stored before the strength existed have no key: as trained, they hash as before
    assert "adapter_strength" not in normalize_settings(GenerationSettings())
    assert normalize_settings(gen)["adapter_strength"] == 0.5 and "strength 0.5" in settings_label(gen.to_dict())
    flags = build_parser().parse_args(["chat", "--prompt", "x", "--adapter-strength", "0.4"])
    assert generation_from(flags).adapter_strength == 0.4
    for bad in (-0.1, 1.6, "strong", float("nan")):
        with pytest.raises(WorkbenchError, match="Adapter strength must be"):
            GenerationSettings(adapter_strength=bad)
