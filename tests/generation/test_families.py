"""Several base models served at once, without loading one: which families are served, their checkpoints' names
(in requests and in the store), what a visitor may choose, and the memory and cores policy with its refusal.

The families here are the real embedded GGUF and a second `.gguf` file that is never loaded; adapters are random
LoRA weights on the tiny Llama, recorded as trained on one family or the other (as training records them).
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.checkpoints import check_checkpoint, checkpoint_kind
from workbench.generation.budget import MB, kv_bytes, plan
from workbench.generation.router import Router, choices, family_of, store_name
from workbench.registry import EMBEDDED_NAME, embedded_base, model_list, resolve_base, served_bases


@pytest.fixture(scope="module")
def home(tiny_model_dir, tmp_path_factory):
    """A store with two families (the second one a file that is never loaded) and adapters of each."""
    root = tmp_path_factory.mktemp("families")
    (root / "other.gguf").write_bytes(b"GGUF")
    adapters = root / "models" / "adapters"
    make_lora_adapter(tiny_model_dir, adapters / "smol-run", EMBEDDED_NAME)
    make_lora_adapter(tiny_model_dir, adapters / "other-run", "other", seed=1)
    make_lora_adapter(tiny_model_dir, adapters / "other", EMBEDDED_NAME, seed=2)  # a main run named like a family
    return root


def two(home, **settings) -> Settings:
    return Settings(home=home, model=f" {EMBEDDED_NAME} , {home / 'other.gguf'}", **settings)


def test_the_main_family_comes_first_and_keeps_its_names(home):
    settings = two(home)
    assert model_list(settings) == [EMBEDDED_NAME, str(home / "other.gguf")]
    assert resolve_base(settings).name == EMBEDDED_NAME
    assert [b.name for b in served_bases(settings)] == [EMBEDDED_NAME, "other"]
    # "other" (the main family's run) is shadowed by the family of that name, so it is not offered.
    assert choices(settings) == ["base", "smol-run", "other", "other/other-run"]
    stored = {c: store_name(settings, c) for c in choices(settings)}
    assert stored == {
        "base": EMBEDDED_NAME,
        "smol-run": "smol-run",
        "other": "other",
        "other/other-run": "other/other-run",
    }
    router = Router(settings)
    assert [router.base_name(c) for c in choices(settings)] == [EMBEDDED_NAME, EMBEDDED_NAME, "other", "other"]
    # One family alone: the names a single-model store always had.
    alone = Settings(home=home)
    assert choices(alone) == ["base", "other", "smol-run"] and store_name(alone, "base") == EMBEDDED_NAME


def test_the_longest_family_name_wins_as_hub_ids_hold_a_slash(home):
    base = resolve_base(two(home))
    short, long = dataclasses.replace(base, name="org"), dataclasses.replace(base, name="org/model")
    assert family_of([short, long], "org/model/run")[0] is long
    assert family_of([short, long], "org/run") == (short, "run")
    assert family_of([short, long], "my-run") == (None, "my-run")


def test_registry_entries_marked_serve_are_families_and_a_bad_name_is_refused(home, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "registry.yaml").write_text(
        f"models:\n  - name: spare\n    source: {home / 'other.gguf'}\n    serve: true\n"
    )
    assert [b.name for b in served_bases(Settings(home=tmp_path))] == [EMBEDDED_NAME, "spare"]
    (models / "registry.yaml").write_text(
        f"models:\n  - name: base\n    source: {home / 'other.gguf'}\n    serve: true\n"
    )
    with pytest.raises(WorkbenchError, match="a family's name must not be 'base'"):
        served_bases(Settings(home=tmp_path))


def test_another_familys_base_is_a_base_model_to_the_gate(home):
    settings = two(home, visitor_checkpoints=("base",))
    assert checkpoint_kind("other", settings) == "base" and checkpoint_kind("other/other-run", settings) == "adapters"
    check_checkpoint(settings, False, "other")
    with pytest.raises(WorkbenchError, match="Adapters are not offered to visitors"):
        check_checkpoint(settings, False, "other/other-run")


def test_the_policy_divides_the_slots_and_refuses_what_does_not_fit(home):
    settings = two(home, slots=8, model_memory_mb=1000, preload="main")
    policy = plan(settings)
    assert policy.families == (EMBEDDED_NAME, "other") and policy.slots == 4 and policy.memory == 1000 * MB
    assert policy.preload == (EMBEDDED_NAME,) and policy.engine_settings(settings).slots == 4
    assert plan(Settings(home=home, slots=8)).slots == 8  # one family: as before
    other = served_bases(settings)[1]
    policy.check_fits(other, 300 * MB, {EMBEDDED_NAME: 600 * MB})
    with pytest.raises(WorkbenchError) as refused:
        policy.check_fits(other, 500 * MB, {EMBEDDED_NAME: 600 * MB})
    sentence = str(refused.value)
    assert sentence.count(".") == 1 and "other needs about 500 MB beside SmolLM2-135M-Instruct (600 MB)" in sentence
    assert "WORKBENCH_MODEL_MEMORY_MB" in sentence and "WORKBENCH_SLOTS" in sentence


def test_the_families_divide_the_cores_evenly_one_compute_thread_per_core(home, monkeypatch):
    from workbench.generation import budget

    monkeypatch.setattr(budget, "usable_cores", lambda: 2)
    settings = two(home, slots=8, preload="main")
    policy = plan(settings)
    assert policy.threads == (1, 1) and "1/1 threads" in policy.describe()
    assert policy.engine_settings(settings).threads == 1 and policy.engine_settings(settings, "other").threads == 1
    assert policy.engine_settings(settings, "other").slots == 4
    assert plan(Settings(home=home)).threads == (None,)  # one family: llama.cpp's own choice, as before
    assert plan(dataclasses.replace(settings, threads=3)).threads == (3, 3)  # WORKBENCH_THREADS: for each
    monkeypatch.setattr(budget, "usable_cores", lambda: 16)
    assert budget.threads_for(settings, 2) == (8, 8) and budget.threads_for(settings, 3) == (6, 5, 5)
    monkeypatch.setattr(budget, "usable_cores", lambda: 3)
    assert budget.threads_for(settings, 2) == (2, 1) and budget.threads_for(settings, 4) == (1, 1, 1, 1)


def test_the_kv_cache_estimate_reads_the_gguf(home):
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 dimensions, keys and values in float16.
    assert kv_bytes(embedded_base().source, 4, 1024) == 30 * 3 * (64 + 64) * 2 * 4 * 1024


def test_a_settings_pair_varies_the_strength_of_an_adapter_of_any_family_never_of_a_family_base(home):
    from workbench.generation.settings import GenerationSettings
    from workbench.studio.battle import ladder, scalable

    settings = two(home)
    assert [scalable(c, settings) for c in choices(settings)] == [False, True, False, True]
    temperatures = [GenerationSettings(temperature=t) for t in (0.2, 0.7, 1.0)]
    assert ladder("other", temperatures, settings) == temperatures
    assert {s.adapter_strength for s in ladder("other/other-run", temperatures, settings)} > {1.0}
