"""Metrics against independent computations: perplexity (text windows, sliding window, responses), BLEU/chrF
against sacrebleu's own command line, diversity, and the bad-input cases.

Perplexity runs on a tiny random Llama (exactness does not need the real model); BLEU/chrF on the shipped
self-instruct references. Run: .venv/bin/python -m pytest -q tests/evaluation/test_metrics.py
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import (
    corpus_scores,
    distinct_n,
    perplexity_of_text,
    read_lines,
    read_text,
    response_perplexity,
    self_bleu,
    sentence_scores,
    streams_from_examples,
    text_windows,
)
from workbench.evaluation.metrics.overlap import sentence_signature
from workbench.evaluation.metrics.perplexity import Span
from workbench.evaluation.suites import EVALS_DIR, read_examples

SACREBLEU = str(Path(sys.executable).parent / "sacrebleu")
SHAKESPEARE = EVALS_DIR / "data" / "tinyshakespeare" / "input_head.txt"
SELF_INSTRUCT = EVALS_DIR / "data" / "self_instruct" / "user_oriented_instructions.jsonl"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def text() -> str:
    return read_text(SHAKESPEARE)[:3000]  # about 900 tokens: several windows of 128 and a short last one


# --- perplexity --------------------------------------------------------------------------------------------


def test_windows_predict_every_token_once():
    ids = list(range(1000))
    plain = text_windows(ids, 128)
    assert [len(s.ids) for s in plain] == [128] * 7 + [104]
    assert sum(s.predicted for s in plain) == 1000 - 8  # a window of n tokens makes n-1 predictions
    for stride in (32, 64, 100, 127):
        spans = text_windows(ids, 128, stride)
        predicted = [s.ids[i] for s in spans for i in range(s.first, len(s.ids))]
        assert predicted == ids[1:], stride  # each token but the first, once, in order
        assert all(len(s.ids) <= 128 for s in spans)
    assert text_windows(ids, 128, 128) == plain  # stride == window is the default method
    assert text_windows([5, 6, 7], 512)[0].ids == (5, 6, 7)  # shorter than a window: one short window


def test_window_and_stride_are_checked():
    with pytest.raises(WorkbenchError, match="at least 2 tokens, not 1"):
        text_windows(range(10), 1)
    with pytest.raises(WorkbenchError, match="between 1 and the window"):
        text_windows(range(10), 8, 9)
    with pytest.raises(WorkbenchError, match="has 1 token; perplexity needs at least 2"):
        text_windows([7], 8)


def _independent_text_nll(model, ids: list[int], window: int) -> tuple[float, int]:
    """A plain forward pass with labels per window: transformers averages over n-1 predictions."""
    import torch

    total, count = 0.0, 0
    for start in range(0, len(ids), window):
        chunk = torch.tensor([ids[start : start + window]])
        if chunk.shape[1] < 2:
            continue
        with torch.no_grad():
            loss = model(input_ids=chunk, labels=chunk).loss.item()
        total += loss * (chunk.shape[1] - 1)
        count += chunk.shape[1] - 1
    return total, count


def test_perplexity_equals_a_plain_forward_pass_with_labels(tiny, text):
    model, tokenizer = tiny
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    total, count = _independent_text_nll(model, ids, 128)
    result = perplexity_of_text(model, tokenizer, text, window=128, batch_size=4)
    assert result.predicted_tokens == count == len(ids) - math.ceil(len(ids) / 128)
    assert result.perplexity == pytest.approx(math.exp(total / count), rel=1e-3)
    assert result.mean_nll == pytest.approx(total / count, rel=1e-5)
    assert result.bits_per_byte == pytest.approx(total / math.log(2) / len(text.encode("utf-8")), rel=1e-5)
    assert result.input_tokens == len(ids) and result.tokens_per_s > 0


def test_batching_and_padding_do_not_change_perplexity(tiny, text):
    model, tokenizer = tiny
    one = perplexity_of_text(model, tokenizer, text, window=100, batch_size=1)
    eight = perplexity_of_text(model, tokenizer, text, window=100, batch_size=8)  # the short window is padded
    assert eight.perplexity == pytest.approx(one.perplexity, rel=1e-4)
    assert eight.predicted_tokens == one.predicted_tokens
    for (a, n), (b, m) in zip(one.per_sequence, eight.per_sequence, strict=True):
        assert n == m and b == pytest.approx(a, rel=1e-4)


def test_sliding_window_matches_the_hugging_face_guide_loop(tiny, text):
    import torch

    model, tokenizer = tiny
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    max_length, stride, seq_len = 128, 48, ids.shape[1]
    nll_sum, n_tokens, prev_end = 0.0, 0, 0
    for begin in range(0, seq_len, stride):  # the loop of the perplexity guide, written out again
        end = min(begin + max_length, seq_len)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        valid = (target_ids[:, 1:] != -100).sum().item()
        nll_sum += loss.item() * valid
        n_tokens += valid
        prev_end = end
        if end == seq_len:
            break
    result = perplexity_of_text(model, tokenizer, text, window=max_length, stride=stride, batch_size=8)
    assert result.predicted_tokens == n_tokens == seq_len - 1
    assert result.perplexity == pytest.approx(math.exp(nll_sum / n_tokens), rel=1e-3)
    assert result.stride == stride and result.sequences > seq_len // max_length


def test_short_text_is_one_short_window_and_a_single_token_is_refused(tiny):
    model, tokenizer = tiny
    short = "To be, or not to be."
    ids = tokenizer(short, add_special_tokens=False)["input_ids"]
    total, count = _independent_text_nll(model, ids, 512)
    result = perplexity_of_text(model, tokenizer, short, window=128)
    assert result.sequences == 1 and result.predicted_tokens == len(ids) - 1 == count
    assert result.perplexity == pytest.approx(math.exp(total / count), rel=1e-3)
    with pytest.raises(WorkbenchError, match="needs at least 2"):
        perplexity_of_text(model, tokenizer, "Hi", window=128)
    with pytest.raises(WorkbenchError, match="empty"):
        perplexity_of_text(model, tokenizer, "", window=128)
    with pytest.raises(WorkbenchError, match="longer than this model's context of 256"):
        perplexity_of_text(model, tokenizer, short, window=512)


def test_bits_per_byte_counts_utf8_bytes(tiny):
    model, tokenizer = tiny
    text = "Café, naïve façade — déjà vu. " * 4
    result = perplexity_of_text(model, tokenizer, text, window=64)
    assert result.bytes == len(text.encode("utf-8")) > len(text)
    assert result.bits_per_byte == pytest.approx(result.total_nll / math.log(2) / result.bytes)


def test_response_perplexity_counts_only_the_reply(tiny):
    import torch

    model, tokenizer = tiny
    examples = [
        ([{"role": "user", "content": "Who are you?"}], "I am a small test model."),
        (
            [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "Another one, and say why you like it in a few more words."},
            ],
            "Green, because it reminds me of spring.",
        ),
    ]
    total, count = 0.0, 0
    for prompt, reply in examples:  # independent: labels -100 on the prompt and on the template after <|im_end|>
        head = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
        full = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": reply}], tokenize=True, return_dict=True
        )
        head, full = head["input_ids"], full["input_ids"]
        end = full.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), len(head)) + 1
        ids = torch.tensor([full[:end]])
        labels = ids.clone()
        labels[:, : len(head)] = -100
        with torch.no_grad():
            loss = model(input_ids=ids, labels=labels).loss.item()
        total += loss * (end - len(head))
        count += end - len(head)
        assert tokenizer.decode(full[len(head) : end]) == reply + "<|im_end|>"
    one = response_perplexity(model, tokenizer, examples, batch_size=1)
    both = response_perplexity(model, tokenizer, examples, batch_size=2)  # the shorter example is padded
    assert one.predicted_tokens == count and one.sequences == 2
    assert one.perplexity == pytest.approx(math.exp(total / count), rel=1e-3)
    assert both.perplexity == pytest.approx(one.perplexity, rel=1e-4)
    with pytest.raises(WorkbenchError, match="no examples"):
        response_perplexity(model, tokenizer, [])


# --- BLEU and chrF against sacrebleu's command line ---------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _perturb(text: str, seed: int) -> str:
    """A plausible system output: the reference with some words dropped and some neighbours swapped."""
    rng = random.Random(seed)
    words = [w for w in text.split() if rng.random() > 0.2]
    for i in range(len(words) - 1):
        if rng.random() < 0.1:
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


@pytest.fixture(scope="module")
def bleu_files(tmp_path_factory) -> dict[str, Path]:
    refs = [_one_line(ex.references[0]) for ex in read_examples(SELF_INSTRUCT)[:60]]
    folder = tmp_path_factory.mktemp("bleu")
    files = {
        "ref": refs,
        "ref2": [_perturb(r, 1000 + i) for i, r in enumerate(refs)],
        "hyp": [_perturb(r, i) for i, r in enumerate(refs)],
    }
    files["hyp"][3] = ""  # a model that said nothing: allowed, scores 0 on that example
    out = {}
    for name, lines in files.items():
        out[name] = folder / f"{name}.txt"
        out[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def sacrebleu_cli(refs: list[Path], hyp: Path, *extra: str) -> str:
    cmd = [SACREBLEU, *map(str, refs), "-i", str(hyp), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.mark.parametrize("n_refs", [1, 2])
def test_corpus_bleu_and_chrf_equal_the_sacrebleu_command_line(bleu_files, n_refs):
    refs = [bleu_files["ref"], bleu_files["ref2"]][:n_refs]
    theirs = json.loads(sacrebleu_cli(refs, bleu_files["hyp"], "-m", "bleu", "chrf", "-w", "10"))
    ours = corpus_scores(read_lines(bleu_files["hyp"]), [read_lines(r) for r in refs], ("bleu", "chrf"))
    assert [s.name for s in ours] == [t["name"] for t in theirs] == ["BLEU", "chrF2"]
    for mine, cli in zip(ours, theirs, strict=True):
        assert float(f"{mine.score:.10f}") == cli["score"]
        assert mine.signature == cli["signature"]
        assert f"nrefs:{n_refs}|" in mine.signature
    assert ours[0].verbose_score == theirs[0]["verbose_score"]
    assert 5 < ours[0].score < 95  # a real, mid-range score, not a degenerate 0 or 100
    only = sacrebleu_cli(refs, bleu_files["hyp"], "-m", "bleu", "chrf", "-b", "-w", "6")
    assert json.loads(only) == [float(f"{s.score:.6f}") for s in ours]


def test_sentence_bleu_equals_the_sacrebleu_sentence_level_command_line(bleu_files):
    lines = sacrebleu_cli([bleu_files["ref"]], bleu_files["hyp"], "-m", "bleu", "-sl", "-w", "8").splitlines()
    ours = sentence_scores(read_lines(bleu_files["hyp"]), [read_lines(bleu_files["ref"])], ("bleu",))
    assert len(lines) == len(ours) == 60
    for line, row in zip(lines, ours, strict=True):
        signature, rest = line.split(" = ", 1)
        assert signature == f"BLEU|{sentence_signature('bleu')}"
        assert rest.split()[0] == f"{row['bleu']:.8f}"


def test_reference_and_hypothesis_counts_are_checked():
    with pytest.raises(WorkbenchError, match="no hypotheses to score"):
        corpus_scores([], [["a reference"]])
    with pytest.raises(WorkbenchError, match="Reference set 2 has 1 references but there are 2 hypotheses"):
        corpus_scores(["one", "two"], [["r1", "r2"], ["r1"]])
    with pytest.raises(WorkbenchError, match="Example 2 has 1 references but example 1 has 2"):
        streams_from_examples([["a", "b"], ["c"]])
    assert streams_from_examples([["a", "b"], ["c", "d"]]) == [["a", "c"], ["b", "d"]]
    with pytest.raises(WorkbenchError, match="Unknown metric 'ter'"):
        corpus_scores(["x"], [["x"]], ("ter",))


def test_files_must_be_utf8_and_lines_are_read_like_sacrebleu(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(WorkbenchError, match=r"latin1.txt is not UTF-8 text \(byte 3"):
        read_lines(bad)
    with pytest.raises(WorkbenchError, match="not UTF-8"):
        read_text(bad)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes("one  \r\ntwo\u2028x\r\n\n".encode())  # only "\n" ends a line, as in sacrebleu
    assert read_lines(crlf) == ["one", "two\u2028x", ""]
    with pytest.raises(WorkbenchError, match="There is no file"):
        read_lines(tmp_path / "missing.txt")


# --- diversity ----------------------------------------------------------------------------------------------


def test_distinct_n_and_self_bleu():
    same = ["the cat sat on the mat"] * 3
    varied = ["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn today"]
    assert distinct_n(same, 1) == pytest.approx(5 / 18)  # the, cat, sat, on, mat over 18 tokens
    assert distinct_n(varied, 2) == 1.0 and distinct_n(same, 2) == pytest.approx(5 / 15)
    assert self_bleu(same) == pytest.approx(100.0)
    assert self_bleu(varied) < 20
    with pytest.raises(WorkbenchError, match="at least two"):
        self_bleu(["alone"])


def test_windows_start_with_bos_for_a_model_that_adds_it():
    """With BOS every window is BOS + up to window-1 text tokens, and every text token is predicted once (the
    first of each window from BOS); BOS is never predicted."""
    ids = list(range(10, 1010))
    spans = text_windows(ids, 128, bos=1)
    assert all(s.ids[0] == 1 and s.first == 1 and len(s.ids) <= 128 for s in spans)
    assert [t for s in spans for t in s.ids[s.first :]] == ids  # every text token, the first included
    for stride in (32, 100, 127):
        chunks = text_windows(ids, 128, stride, bos=1)
        assert all(s.ids[0] == 1 and len(s.ids) <= 128 for s in chunks)
        assert [s.ids[i] for s in chunks for i in range(s.first, len(s.ids))] == ids, stride
    assert text_windows([7], 8, bos=1) == [Span((1, 7), 1)]  # one token is enough with BOS
    with pytest.raises(WorkbenchError, match=r"between 1 and the window less its BOS \(7\)"):
        text_windows(ids, 8, 8, bos=1)
