"""Two base models served by one app: the embedded SmolLM2 (the main family, with a fine-tune) and Gemma 3 270M
(the real GGUF), both on llama.cpp. One app state for the module (`AppContext`, as `python app.py` builds it, with
its warm-up loading both as the memory policy says) and its `/v1` API in process under the real `openai` client.

Chatted with, paired in an Arena battle whose names come only with the vote, ranked on the leaderboard, listed by
the selectors and `/v1/models`; the memory policy's refusal and its idle unload.
"""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router
from workbench.generation.settings import GenerationSettings
from workbench.registry import EMBEDDED_NAME

pytestmark = pytest.mark.slow

GEMMA = "gemma-3-270m-q4_k_m"  # the family's name: its file's name
GREEDY = GenerationSettings(temperature=0, max_new_tokens=8, seed=0)
FRANCE = [{"role": "user", "content": "The capital of France is"}]


@pytest.fixture(scope="module")
def app(models_dir, embedded_dir, gemma_gguf, tmp_path_factory):
    from workbench.ui.context import AppContext

    home = tmp_path_factory.mktemp("families-app")
    settings = Settings(
        home=home, models_dir=models_dir, adapters_dir=home / "adapters", model=f"{EMBEDDED_NAME},{gemma_gguf}"
    )
    make_lora_adapter(embedded_dir, settings.adapters_dir / "smol-run", EMBEDDED_NAME, scale=0.5)
    ctx = AppContext(settings)
    ctx.warm_up().join()
    yield ctx
    for engine in list(ctx.router()._engines.values()):
        engine.close()


def test_both_families_load_at_start_and_every_selector_lists_them(app):
    status = app.status()
    assert status["ready"] and status["loaded"] == [EMBEDDED_NAME, GEMMA]  # both fit half the memory: preloaded
    assert status["slots"] == app.settings.slots // 2  # the slots are divided between the two families
    assert app.checkpoint_choices() == ["base", "smol-run", GEMMA]


def test_each_family_chats_and_says_which_it_is(app):
    router = app.router()
    replies = {c: router.stream(FRANCE, GREEDY, adapter=c) for c in ("base", "smol-run", GEMMA)}
    stats = {c: (r.result()[1].model, r.stats.adapter, r.stats.backend) for c, r in replies.items()}
    assert stats == {
        "base": (EMBEDDED_NAME, None, "llamacpp"),
        "smol-run": (EMBEDDED_NAME, "smol-run", "llamacpp"),
        GEMMA: (GEMMA, None, "llamacpp"),
    }
    assert replies[GEMMA].stats.completion and replies[GEMMA].text.strip()  # Gemma base continues the text
    assert replies["base"].text != replies[GEMMA].text


def test_the_arena_pairs_across_families_and_names_them_only_with_the_vote(app):
    from workbench.ratings.leaderboard import standings
    from workbench.store import Store
    from workbench.studio import battle as battles

    router = app.router().for_visitors()
    offered = app.checkpoint_choices()
    draws = (battles.new_battle(offered, "checkpoint", GREEDY, random.Random(seed)) for seed in range(200))
    battle = next(b for b in draws if {b.left.checkpoint, b.right.checkpoint} == {"base", GEMMA})
    replies = battles.start_turn(router, battle, "Name a colour.")
    shown = list(battles.lockstep(*replies, pace_s=0.01))
    assert shown and all(EMBEDDED_NAME not in a + b and GEMMA not in a + b for a, b in shown)
    with Store(app.settings.db_url) as store:
        battle = battles.finish_turn(router, store, battle, "Name a colour.", replies)
        battle, kept = battles.vote(store, battle, "left", rater=None, reason=None, session="voter-0123456789")
        revealed = battles.names(router, battle)
        assert {revealed["left"], revealed["right"]} == {EMBEDDED_NAME, GEMMA} and kept == "left"
        board = standings(store.battles(), store.likert(), bootstrap=0).board
        assert set(board["model"]) == {EMBEDDED_NAME, GEMMA}
        stored = store.checkpoints()
        assert set(zip(stored["name"], stored["base_model"], strict=True)) == {
            (EMBEDDED_NAME, EMBEDDED_NAME),
            (GEMMA, GEMMA),
        }


def test_the_openai_client_lists_and_chats_with_both(app):
    from openai import OpenAI
    from starlette.testclient import TestClient

    from workbench.cli.serve import build_app

    api, loading = build_app(app.settings, app.router())
    loading.start()
    loading.join()  # the engines are loaded already: this marks the API ready
    with TestClient(api, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as http:
        assert http.get("/status").json()["ready"]
        client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused", http_client=http, max_retries=0)
        ids = [m.id for m in client.models.list().data]
        assert ids == [EMBEDDED_NAME, "base", "smol-run", GEMMA]
        reply = client.chat.completions.create(model=GEMMA, messages=FRANCE, temperature=0, max_tokens=8, seed=0)
    assert reply.model == GEMMA and "capital" in reply.choices[0].message.content  # Gemma continues the sentence


def test_a_family_that_does_not_fit_gets_one_sentence_and_an_idle_one_unloads(app):
    main = app.router().main()
    tight = Router(dataclasses.replace(app.settings, model_memory_mb=700, preload="main"), main=lambda: main)
    with pytest.raises(WorkbenchError) as refused:
        tight.generate(FRANCE, GREEDY, GEMMA)
    sentence = str(refused.value)
    assert sentence.startswith(f"{GEMMA} needs about ") and f"beside {EMBEDDED_NAME} (" in sentence
    assert "raise WORKBENCH_MODEL_MEMORY_MB" in sentence and sentence.count(".") == 1
    assert list(tight.loaded()) == [EMBEDDED_NAME]  # nothing was loaded for it

    router = app.router()
    router._used[f"family:{GEMMA}"] = time.monotonic() - app.settings.idle_unload - 1  # its last request, long ago
    router.generate(FRANCE, GREEDY, "base")  # requests are when idle families are looked at
    assert list(router.loaded()) == [EMBEDDED_NAME]


def test_the_finetune_tab_validates_a_run_on_the_other_family(app):
    from workbench.ui.finetune_actions import Tokenizers, shipped_datasets, validate

    report, start = validate(app, Tokenizers(), None, shipped_datasets()[0], None, 0.1, 256, 42, base_model=GEMMA)
    assert report.startswith("**Validation report**") and start["interactive"]  # Gemma's tokenizer read the data
    assert "Estimated peak memory" in report  # and the run's memory estimate is Gemma's
