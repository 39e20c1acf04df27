"""Token probabilities of a reply: a teacher-forced pass of the transformers reference on the real embedded model,
checked against the vocabulary (sums to 1) and against a direct forward pass per position; the cut rules
(temperature, top-k, top-p, greedy) on hand-made logits.

Run: .venv/bin/python -m pytest -q tests/generation/test_tokenprobs.py
"""

from __future__ import annotations

import math

import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.generation.tokenprobs import _position, mean_logprob, reply_distributions, token_probabilities

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
REPLY = "The capital of France is Paris."


def test_cuts_follow_temperature_then_top_k_then_top_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    row = _position(logits, 2, GenerationSettings(temperature=1.0, top_p=0.7, top_k=3), k=4)
    assert [round(p, 3) for _, p, _ in row["alternatives"]] == [0.5, 0.3, 0.15, 0.05]
    # top-k 3 keeps 0.95 of the mass; renormalised, 0.5/0.95 = 0.526 < 0.7 so the second token survives top-p,
    # 0.8/0.95 = 0.842 >= 0.7 so the third is cut by top-p, and the fourth by top-k.
    assert [cut for *_, cut in row["alternatives"]] == [None, None, "top-p", "top-k"]
    assert row["rank"] == 2 and row["cut"] == "top-p" and row["probability"] == pytest.approx(0.15)
    assert row["entropy"] == pytest.approx(-sum(p * math.log(p) for p in (0.5, 0.3, 0.15, 0.05)), abs=1e-5)
    hot = _position(logits, 2, GenerationSettings(temperature=2.0, top_p=0.7, top_k=0), k=4)
    assert hot["scaled"] > 0.15 and hot["cut"] is None  # a flatter distribution lets it through
    greedy = _position(logits, 1, GenerationSettings(temperature=0.0), k=2)
    assert greedy["cut"] == "greedy" and [c for *_, c in greedy["alternatives"]] == [None, "greedy"]


@pytest.mark.slow
def test_reply_distributions_sum_to_one_and_match_a_direct_forward_pass(engine):
    reply_ids, logits, decode = reply_distributions(engine, MESSAGES, REPLY, "base")
    probs = torch.softmax(logits, -1)
    assert probs.shape[0] == len(reply_ids) >= 5
    assert torch.allclose(probs.sum(-1), torch.ones(len(reply_ids)), atol=1e-5)
    assert "".join(decode(reply_ids)) == REPLY
    prompt_ids, _ = engine.fit(MESSAGES, len(reply_ids))
    with engine.model_for("base") as model, torch.no_grad():
        for i in (0, 3, len(reply_ids) - 1):  # a separate forward pass that sees only the tokens before i
            inputs = torch.tensor([prompt_ids + reply_ids[:i]])
            direct = torch.softmax(model(input_ids=inputs).logits[0, -1].float(), -1)
            assert torch.allclose(direct, probs[i], atol=1e-4)
    rows = token_probabilities(engine, MESSAGES, REPLY, "base", temperature=0.7, top_p=0.9, top_k=20, k=3)
    assert "".join(r["token"] for r in rows) == REPLY
    for i, row in enumerate(rows):
        assert row["probability"] == pytest.approx(float(probs[i, reply_ids[i]]), rel=1e-4)
        assert len(row["alternatives"]) == 3
        assert row["alternatives"][0]["probability"] >= row["alternatives"][-1]["probability"]
    paris = next(r for r in rows if r["token"].strip() == "Paris")
    assert paris["probability"] > 0.5 and paris["rank"] == 0 and paris["cut"] is None
    mean = mean_logprob(engine, MESSAGES, REPLY, "base")
    assert mean == pytest.approx(sum(r["logprob"] for r in rows) / len(rows), rel=1e-4)


@pytest.mark.slow
def test_an_empty_reply_or_bad_k_gets_one_sentence(engine):
    with pytest.raises(WorkbenchError, match="no reply"):
        token_probabilities(engine, MESSAGES, "  ", "base")
    with pytest.raises(WorkbenchError, match="between 1 and 20"):
        token_probabilities(engine, MESSAGES, REPLY, "base", k=0)
