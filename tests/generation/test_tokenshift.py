"""What a checkpoint changed, token by token: on a tiny random Llama with a random adapter, each token's probability
under the base and the adapter matches a direct peft forward pass with the adapter on and off; the refusals (the same
checkpoint twice, two base models, an empty reply) are one sentence each. The real embedded model with a LoRA
checkpoint: the readings agree with the token view's probabilities under each checkpoint.

Run: .venv/bin/python -m pytest -q tests/generation/test_tokenshift.py
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.fixtures.models import make_lora_adapter
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.generation.tokenshift import check_pair, token_shift

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
REPLY = "The capital of France is Paris."


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    from workbench.generation.engine import ChatEngine

    home = tmp_path_factory.mktemp("shift-home")
    settings = Settings(home=home, model=str(tiny_model_dir))
    for name, seed in (("one", 5), ("two", 6)):
        make_lora_adapter(tiny_model_dir, settings.adapters_dir / name, tiny_model_dir.name, seed, rank=4)
    return ChatEngine.load(settings)


def direct_logprobs(engine, folder, checkpoint: str) -> list[float]:
    """The reply tokens' log-probabilities from a separate peft model with the adapter loaded or switched off."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    adapter = engine.resolve_adapter("one")
    model = PeftModel.from_pretrained(base, str(adapter.path)).eval()
    reply_ids = engine.tokenizer(REPLY, add_special_tokens=False)["input_ids"]
    prompt_ids, _ = engine.fit(MESSAGES, len(reply_ids))
    inputs = torch.tensor([prompt_ids + reply_ids])
    with torch.no_grad():
        if checkpoint == "base":
            with model.disable_adapter():
                logits = model(input_ids=inputs).logits[0]
        else:
            logits = model(input_ids=inputs).logits[0]
    logp = torch.log_softmax(logits[len(prompt_ids) - 1 : -1].float(), -1)
    return logp[torch.arange(len(reply_ids)), torch.tensor(reply_ids)].tolist()


def test_each_tokens_shift_matches_the_adapter_switched_on_and_off(tiny_engine, tiny_model_dir):
    rows = token_shift(tiny_engine, MESSAGES, REPLY, "base", "one")
    assert "".join(r["token"] for r in rows) == REPLY
    base, adapter = (direct_logprobs(tiny_engine, tiny_model_dir, name) for name in ("base", "one"))
    assert [r["logprob_before"] for r in rows] == pytest.approx(base, abs=1e-4)
    assert [r["logprob_after"] for r in rows] == pytest.approx(adapter, abs=1e-4)
    for row in rows:
        assert row["shift"] == pytest.approx(row["logprob_after"] - row["logprob_before"])
        assert row["after"] == pytest.approx(math.exp(row["logprob_after"]))
        assert isinstance(row["top_before"], str) and isinstance(row["top_after"], str)
    assert max(abs(r["shift"]) for r in rows) > 1e-3  # a random adapter moves something
    # The other way round is the same numbers mirrored; two adapters of one base compare as well.
    back = token_shift(tiny_engine, MESSAGES, REPLY, "one", "base")
    assert [r["shift"] for r in back] == pytest.approx([-r["shift"] for r in rows], abs=1e-5)
    two = token_shift(tiny_engine, MESSAGES, REPLY, "one", "two")
    assert [r["before"] for r in two] == pytest.approx([r["after"] for r in rows], abs=1e-5)


def test_bad_pairs_and_replies_get_one_sentence(tiny_engine):
    with pytest.raises(WorkbenchError, match="two different checkpoints to compare; both are base"):
        token_shift(tiny_engine, MESSAGES, REPLY, "base", None)
    with pytest.raises(WorkbenchError, match="no reply"):
        token_shift(tiny_engine, MESSAGES, "  ", "base", "one")
    with pytest.raises(WorkbenchError, match="nope"):
        token_shift(tiny_engine, MESSAGES, REPLY, "base", "nope")


class TwoFamilies:
    """A stand-in for a Router serving two base models (plumbing only: which family a name belongs to)."""

    def base_name(self, checkpoint: str) -> str:
        return "gemma-3-270m" if checkpoint.startswith("gemma") else "SmolLM2-135M-Instruct"


def test_two_base_models_are_refused_in_one_sentence():
    with pytest.raises(WorkbenchError) as refused:
        check_pair(TwoFamilies(), "base", "gemma/my-run")
    assert str(refused.value) == (
        "base belongs to SmolLM2-135M-Instruct and gemma/my-run to gemma-3-270m: compare two checkpoints of one "
        "base model, which read the same tokens."
    )
    assert check_pair(TwoFamilies(), None, "my-run") == ("base", "my-run")
    with pytest.raises(WorkbenchError, match="named by its text, not by float"):
        check_pair(TwoFamilies(), -1e12, "my-run")


def test_the_router_refuses_a_local_and_a_remote_model(tmp_path):
    from workbench.generation.router import Router

    router = Router(Settings(home=tmp_path))  # nothing loads: which model a name belongs to is torch-free
    with pytest.raises(WorkbenchError, match="belongs to SmolLM2-135M-Instruct and remote:gemma/run to gemma"):
        check_pair(router, "base", "remote:gemma/run")
    assert check_pair(router, "my-run/checkpoint-2", "") == ("my-run/checkpoint-2", "base")


@pytest.mark.slow
def test_the_embedded_model_and_a_lora_checkpoint_agree_with_the_token_view(engine, dash_checkpoints):
    from workbench.generation.tokenprobs import token_probabilities

    adapter = dash_checkpoints[1]
    rows = token_shift(engine, MESSAGES, REPLY, "base", adapter)
    plain = token_probabilities(engine, MESSAGES, REPLY, "base")
    tuned = token_probabilities(engine, MESSAGES, REPLY, adapter)
    assert [r["before"] for r in rows] == pytest.approx([r["probability"] for r in plain], rel=1e-4)
    assert [r["after"] for r in rows] == pytest.approx([r["probability"] for r in tuned], rel=1e-4)
    paris = next(r for r in rows if r["token"].strip() == "Paris")
    assert paris["before"] > 0.5 and paris["top_before"].strip() == "Paris"
