"""Remote models through the OpenAI-compatible backend, against real servers on loopback.

llama.cpp's own HTTP server on the embedded model plays the remote server (`llama_server`, started by the test
setup in a subprocess, with an API key); a fault-injecting reverse proxy in front of it (`fault_proxy`) gives
429 with Retry-After, 500s, slowness; a dead port gives no server at all. The openai client is the real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fixtures.remote import dead_port
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.router import Router, choices, store_name
from workbench.generation.settings import GenerationSettings
from workbench.registry import list_bases, resolve_base
from workbench.store import Store
from workbench.studio import compare

SECRET = "sk-test-" + "9f3c1e7a5b2d4c6e8f0a"  # must never appear in the store, exports, logs or errors
KEY_VAR = "WORKBENCH_TEST_REMOTE_KEY"
FRANCE = [
    {"role": "system", "content": "Answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24)


def write_registry(models_dir: Path, **entries: dict) -> None:
    models = [{"name": name, "backend": "openai", **entry} for name, entry in entries.items()]
    (models_dir / "registry.yaml").write_text(yaml.safe_dump({"models": models}), encoding="utf-8")


@pytest.fixture
def home(tmp_path, models_dir, monkeypatch):
    """A home whose model store shares the converted embedded model but has its own registry.yaml."""
    own = tmp_path / "models"
    own.mkdir()
    (own / "base").symlink_to(models_dir / "base")
    monkeypatch.setenv(KEY_VAR, SECRET)
    return tmp_path


def settings_for(home: Path, **extra) -> Settings:
    return Settings(home=home, models_dir=home / "models", remote_retries=extra.pop("retries", 2), **extra)


@pytest.fixture
def remote(home, llama_server, monkeypatch):
    """Settings with one remote model, "llama", served by llama.cpp's HTTP server (key from KEY_VAR)."""
    monkeypatch.setenv(KEY_VAR, llama_server.api_key)
    write_registry(
        home / "models",
        llama={
            "base_url": llama_server.base_url,
            "model": llama_server.model,
            "api_key_env": KEY_VAR,
            "sampling": {"top_k": "top_k", "repetition_penalty": "repeat_penalty"},
        },
    )
    return settings_for(home)


# --- the registry ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"base_url": "https://x/v1", "model": "m", "api_key": "sk-1"}, "never goes in registry.yaml"),
        ({"base_url": "ftp://x/v1", "model": "m"}, "base_url must be an http"),
        ({"base_url": "https://user:pw@x/v1", "model": "m"}, "must not carry credentials"),
        ({"base_url": "https://x/v1"}, "model must name the server's model"),
        ({"base_url": "https://x/v1", "model": "m", "api_key_env": "sk-abc def"}, "name of an environment variable"),
        ({"base_url": "https://x/v1", "model": "m", "sampling": {"typical_p": "typical_p"}}, "sampling may map"),
        ({"base_url": "https://x/v1", "model": "m", "colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_remote_entries_get_one_sentence(home, entry, needle):
    write_registry(home / "models", bad=entry)
    with pytest.raises(WorkbenchError, match=needle):
        list_bases(settings_for(home))


def test_a_remote_model_without_its_key_is_listed_but_unusable(home, monkeypatch):
    monkeypatch.delenv(KEY_VAR)
    write_registry(
        home / "models", gpt={"base_url": "https://api.example.com/v1", "model": "g", "api_key_env": KEY_VAR}
    )
    settings = settings_for(home)
    gpt = next(b for b in list_bases(settings) if b.name == "gpt")
    assert gpt.kind == "remote" and not gpt.usable and KEY_VAR in gpt.reason
    assert "remote:gpt" not in choices(settings)
    with pytest.raises(WorkbenchError, match=f"set {KEY_VAR}"):
        resolve_base(settings, "gpt")


def test_remote_checkpoints_have_store_names(remote):
    names = choices(remote)
    assert names[0] == "base" and "remote:llama" in names
    assert store_name(remote, "remote:llama") == "llama" and store_name(remote, "remote:llama/x") == "llama/x"
    assert store_name(remote, "base") == "SmolLM2-135M-Instruct"


# --- talking to a real server ----------------------------------------------------------------------------


@pytest.mark.slow
def test_chat_streams_from_the_remote_model_with_usage_and_server_details(remote, llama_server):
    router = Router(remote)
    reply = router.stream(FRANCE, GREEDY, adapter="remote:llama")
    chunks = list(reply)
    stats = reply.stats
    assert len(chunks) > 1 and "Paris" in reply.text
    assert stats.backend == "openai" and stats.finish_reason == "eos" and stats.ttft_s < stats.total_s
    assert stats.prompt_tokens > 10 and stats.new_tokens == stats.details["usage"]["completion_tokens"]
    assert stats.details["server"] == llama_server.base_url and stats.details["server_model"] == llama_server.model
    assert stats.details["sent"]["temperature"] == 0 and stats.details["not_applied"] == []
    assert SECRET not in json.dumps(stats.to_dict()) and llama_server.api_key not in json.dumps(stats.to_dict())


@pytest.mark.slow
def test_settings_reach_the_server_or_say_they_were_not_applied(remote, home, llama_server, monkeypatch):
    router = Router(remote)
    story = [{"role": "user", "content": "Write a short story about a dragon."}]
    greedy = router.generate(story, GREEDY, "remote:llama")[0]
    # top-k 1 leaves only the most likely token: greedy even at temperature 2 (llama.cpp takes top_k)
    assert (
        router.generate(story, GenerationSettings(temperature=2, top_k=1, seed=3, max_new_tokens=24), "remote:llama")[0]
        == greedy
    )
    hot = GenerationSettings(temperature=1.2, top_k=0, seed=11, max_new_tokens=24)
    assert router.generate(story, hot, "remote:llama")[0] == router.generate(story, hot, "remote:llama")[0] != greedy
    _, stats = router.generate(story, GenerationSettings(temperature=0, max_new_tokens=6), "remote:llama")
    assert stats.new_tokens == 6 and stats.finish_reason == "length"
    # The same server named without `sampling`: top-k and the penalty are not sent, and the reply says so.
    write_registry(
        home / "models", plain={"base_url": llama_server.base_url, "model": llama_server.model, "api_key_env": KEY_VAR}
    )
    _, stats = Router(settings_for(home)).generate(
        story, GenerationSettings(temperature=0.7, top_k=5, repetition_penalty=1.3, max_new_tokens=4), "remote:plain"
    )
    assert stats.details["not_applied"] == ["top_k", "repetition_penalty"] and "not applied" in stats.summary()
    assert "extra_body" not in stats.details["sent"]


@pytest.mark.slow
def test_cancel_and_stop_strings_close_the_stream(remote):
    router = Router(remote)
    long = [{"role": "user", "content": "Write a very long story about a dragon who learns to cook."}]
    reply = router.stream(long, GenerationSettings(temperature=0.8, seed=1, max_new_tokens=400), "remote:llama")
    chunks = iter(reply)
    next(chunks)
    reply.cancel()
    list(chunks)
    assert reply.stats.finish_reason == "cancelled" and reply.stats.new_tokens < 50
    full = router.generate(long, GenerationSettings(temperature=0, max_new_tokens=40), "remote:llama")[0]
    word = full.split()[5]
    text, stats = router.generate(
        long, GenerationSettings(temperature=0, max_new_tokens=40, stop=(word,)), "remote:llama"
    )
    assert stats.finish_reason == "stop" and word not in text and full.startswith(text)


@pytest.mark.slow
def test_compare_a_local_checkpoint_with_the_remote_model(remote, engine, llama_server):
    """One prompt set over the local base and the remote model, stored under their names with the server's
    details (never the key), then re-shown from the store."""
    router = Router(remote, main=lambda: engine)
    with Store(f"sqlite:///{remote.home / 'compare.db'}") as store:
        store.add_prompt_set("two", [{"text": "What is the capital of France?"}, {"text": "Name a colour."}])
        settings = GenerationSettings(temperature=0, max_new_tokens=16, seed=0)
        counts = compare.run_prompt_set(
            router, store, "two", ["base", "remote:llama"], settings, system_prompt="Answer in one sentence."
        )
        assert counts == {"generated": 4, "from_store": 0}
        again = compare.run_prompt_set(
            router, store, "two", ["base", "remote:llama"], settings, system_prompt="Answer in one sentence."
        )
        assert again == {"generated": 0, "from_store": 4}
        rows = store.generations()
        assert set(rows.checkpoint) == {"SmolLM2-135M-Instruct", "llama"}
        remote_rows = rows[rows.checkpoint == "llama"]
        assert set(remote_rows.backend) == {"openai"}
        assert all(m["server"]["server"] == llama_server.base_url for m in remote_rows.metadata)
        exported = store.export_bytes("generations", "jsonl")
    database = (remote.home / "compare.db").read_bytes()
    for blob in (exported, database):
        assert SECRET.encode() not in blob and llama_server.api_key.encode() not in blob


@pytest.mark.slow
def test_token_probabilities_come_from_the_servers_logprobs_and_perplexity_says_why_not(remote):
    router = Router(remote)
    top = router.next_token_probabilities(FRANCE, "remote:llama", k=5)
    assert len(top) == 5 and top[0][1].strip() == "The" and abs(sum(p for _, _, p in top) - 1) < 1e-6
    engine, _ = router.route("remote:llama")
    with pytest.raises(WorkbenchError, match="not offered for remote models"), engine.model_for("base"):
        pass


# --- faults ------------------------------------------------------------------------------------------------


def proxied(home: Path, proxy_url: str, model: str, **extra) -> Settings:
    write_registry(home / "models", flaky={"base_url": proxy_url, "model": model, "api_key_env": KEY_VAR})
    return settings_for(home, **extra)


@pytest.mark.slow
def test_429_with_retry_after_costs_a_wait_not_a_failure(home, llama_server, fault_proxy, monkeypatch):
    monkeypatch.setenv(KEY_VAR, llama_server.api_key)
    proxy = fault_proxy(llama_server.base_url)
    proxy.fail(status=429, times=2, retry_after=1.0)
    text, _ = Router(proxied(home, proxy.base_url, llama_server.model, retries=3)).generate(
        FRANCE, GREEDY, "remote:flaky"
    )
    assert "Paris" in text
    assert [s.status for s in proxy.seen][:3] == [429, 429, 200]
    assert all(gap >= 1.0 for gap in proxy.gaps()[:2])  # Retry-After was honoured


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        ("500", r"failed \(HTTP 500\) for flaky after 1 retry"),
        ("429", r"rate-limited .* after 1 retry: wait a minute"),
        ("slow", r"did not answer within 1 s after 1 retry"),
        ("dead", r"Cannot reach .* is the server running"),
        ("key", r"refused the key in WORKBENCH_TEST_REMOTE_KEY \(HTTP 401\): check the API key"),
    ],
)
def test_faults_end_in_one_sentence_and_nothing_stored(home, llama_server, fault_proxy, monkeypatch, fault, needle):
    monkeypatch.setenv(KEY_VAR, SECRET if fault == "key" else llama_server.api_key)
    proxy = fault_proxy(llama_server.base_url)
    url = proxy.base_url
    if fault in ("500", "429"):
        proxy.fail(status=int(fault), times=None, retry_after=0.1 if fault == "429" else None)
    elif fault == "slow":
        proxy.delay(3.0)
    elif fault == "dead":
        url = f"http://127.0.0.1:{dead_port()}/v1"
    settings = proxied(home, url, llama_server.model, retries=1, remote_timeout=1.0)
    router = Router(settings)
    with Store(f"sqlite:///{home / 'faults.db'}") as store:
        with pytest.raises(WorkbenchError, match=needle) as failed:
            compare.generate(router, store, compare.Request("What is the capital of France?", "remote:flaky", GREEDY))
        assert len(store.generations()) == 0
    assert "\n" not in str(failed.value) and SECRET not in str(failed.value)


@pytest.mark.slow
def test_the_cli_says_the_sentence_and_exits_2(home, monkeypatch):
    write_registry(
        home / "models", gone={"base_url": f"http://127.0.0.1:{dead_port()}/v1", "model": "m", "api_key_env": KEY_VAR}
    )
    env = {**os.environ, **settings_for(home, retries=0).to_env(), KEY_VAR: SECRET}
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "chat", "--model", "gone", "--prompt", "Hi", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Cannot reach" in done.stderr and "Traceback" not in done.stderr
    assert SECRET not in done.stderr + done.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "workbench", "models", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    gone = next(b for b in json.loads(listing.stdout)["bases"] if b["name"] == "gone")
    assert gone["status"]["reachable"] is False and "Cannot reach" in gone["status"]["error"]
    assert SECRET not in listing.stdout


@pytest.mark.slow
def test_models_lists_what_a_reachable_server_serves(remote, llama_server):
    env = {**os.environ, **remote.to_env()}
    listing = subprocess.run(
        [sys.executable, "-m", "workbench", "models", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    llama = next(b for b in json.loads(listing.stdout)["bases"] if b["name"] == "llama")
    assert llama["status"] == {"reachable": True, "models": [llama_server.model]}
    assert llama["remote"]["api_key_env"] == KEY_VAR and llama_server.api_key not in listing.stdout


@pytest.mark.slow
def test_the_chat_tab_offers_and_streams_the_remote_model(remote, engine):
    """The Gradio chat function (what the UI and the "chat" API endpoint run) with checkpoint remote:llama."""
    pytest.importorskip("gradio")
    from tests.fixtures.aio import collect
    from workbench.ui.chat import make_chat_fn
    from workbench.ui.context import AppContext

    ctx = AppContext(remote)
    ctx._engine = engine  # the local model is already loaded by the session
    assert "remote:llama" in ctx.checkpoint_choices()
    chat = make_chat_fn(ctx)
    updates = collect(
        chat(
            "What is the capital of France?",
            [],
            "Answer in one sentence.",
            "remote:llama",
            0,
            24,
            0.95,
            50,
            1.0,
            None,
            "",
        )
    )
    history, stats = updates[-1]
    assert len(updates) > 2 and "Paris" in history[-1]["content"] and "openai" in stats


def test_a_remote_adapter_at_another_strength_is_refused_unless_its_server_takes_the_strength(home):
    """Nothing is sent: the refusal comes before any request, and a server that takes it gets it as an extra field."""
    far = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "adapters": {"run": "run"}}
    write_registry(home / "models", far=far, wb={**far, "sampling": {"adapter_strength": "adapter_strength"}})
    router = Router(settings_for(home))
    half = GREEDY.replace(adapter_strength=0.5, repetition_penalty=1.0)
    with pytest.raises(WorkbenchError, match="serves adapter 'run' as trained only: set the adapter strength to 1"):
        router.stream(FRANCE, half, "remote:far/run")
    far_engine, _ = router.route("remote:far")
    assert far_engine._job(FRANCE, half, None).settings.adapter_strength == 1.0  # its base ignores the strength
    wb_engine, _ = router.route("remote:wb")
    job = wb_engine._job(FRANCE, half, "run")
    kwargs, not_applied = wb_engine.backend.request(job.messages, job.settings, job.seed, "run")
    assert kwargs["extra_body"] == {"adapter_strength": 0.5} and not not_applied
