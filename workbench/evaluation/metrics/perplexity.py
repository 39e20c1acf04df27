"""Perplexity of a causal language model: over plain text (windows) and over chat responses (prompt excluded).

Text, default method (`stride=None`): tokenize the whole text without special tokens, cut the ids into
consecutive non-overlapping windows of `window` tokens (the last one may be shorter), and predict every
token of a window from the tokens before it in the same window. A window of n tokens contributes n-1
predictions; the mean negative log-likelihood (NLL) is averaged over all predictions of all windows.

Models whose tokenizer starts every text with BOS (Gemma, Llama 2 and 3, Mistral...) saw no text without it
in training, so for them every window starts as the model starts a text: BOS, then up to `window - 1` text
tokens, all of them predicted (the first from BOS alone); BOS itself is never predicted. A window then
contributes as many predictions as it has text tokens. (lm-evaluation-harness fixed the same pit for Gemma
by starting every rolling window with the model's prefix token.) The result says whether BOS was used.

Text, sliding-window method (`stride=S`, as in the Hugging Face perplexity guide): windows of `window`
tokens start every S tokens; each window predicts only the tokens no earlier window predicted, with the
tokens before them in the window as left context. Every token but the first is predicted once, with at
least `window - S` tokens of context once the text is long enough. `stride == window` is the default method.
With BOS, each chunk is BOS plus `window - 1` text tokens, chunks start every S text tokens (S at most
`window - 1`), and every text token is predicted once.

Responses: each example is a conversation and a reference reply. The conversation is rendered with the
model's chat template and the assistant cue; the reply's tokens (up to and including the end-of-turn
token) are predicted from it. Prompt tokens are fed but never counted.

Windows and examples are scored in batches, right-padded; padding is masked in attention and carries
label -100, so it never counts. Losses are summed in float32 from the logits, whatever the model's dtype.

    result = perplexity_of_text(model, tokenizer, text, window=512, batch_size=8)
    result.perplexity, result.bits_per_byte, result.predicted_tokens, result.tokens_per_s
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import WorkbenchError

IGNORE = -100  # the label value transformers' and torch's losses skip


@dataclass(frozen=True)
class Span:
    """One sequence to score: `ids` are fed; tokens at positions `first..len(ids)-1` are predicted."""

    ids: tuple[int, ...]
    first: int

    @property
    def predicted(self) -> int:
        """How many tokens of this span are predicted."""
        return max(len(self.ids) - self.first, 0)


@dataclass
class Perplexity:
    """A perplexity measurement.

    Attributes:
        mean_nll: Mean negative log-likelihood per predicted token, in nats.
        perplexity: exp(mean_nll).
        predicted_tokens: Tokens whose probability was counted.
        total_nll: Sum of the NLL over predicted tokens, in nats.
        input_tokens: Tokens fed to the model (context included, padding excluded).
        sequences: Windows or examples scored.
        seconds: Wall time of the scoring (forward passes and loss).
        tokens_per_s: input_tokens / seconds.
        bytes: UTF-8 bytes of the text scored (text perplexity; the references for responses).
        bits_per_byte: total_nll in bits / bytes, comparable across tokenizers.
        window: Window length in tokens (text perplexity), BOS included when it is used.
        stride: Stride in tokens (text perplexity; equals window for the default method, window - 1 with BOS).
        bos: True when every window started with the model's BOS token (see the module docstring).
        per_sequence: (total_nll, predicted_tokens) of each window or example, in input order.
    """

    mean_nll: float
    perplexity: float
    predicted_tokens: int
    total_nll: float
    input_tokens: int
    sequences: int
    seconds: float
    tokens_per_s: float
    bytes: int = 0
    bits_per_byte: float | None = None
    window: int | None = None
    stride: int | None = None
    bos: bool = False
    per_sequence: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def to_dict(self, per_sequence: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; the per-sequence list only when asked for."""
        data = asdict(self)
        if not per_sequence:
            data.pop("per_sequence")
        return data


def text_windows(ids: Sequence[int], window: int, stride: int | None = None, bos: int | None = None) -> list[Span]:
    """Cut token ids into the spans the text methods score (see the module docstring).

    Args:
        ids: The whole text's token ids (no special tokens).
        window: Most tokens per window, >= 2 (BOS included when given).
        stride: None (or the window's text length) for consecutive non-overlapping windows; else
            1 <= stride <= the window's text length (`window`, or `window - 1` with BOS).
        bos: The BOS token id to start every window with, or None for a model that adds none.
    """
    if window < 2:
        raise WorkbenchError(f"The window must be at least 2 tokens, not {window}.")
    text_len = window - 1 if bos is not None else window
    stride = text_len if stride is None else stride
    if not 1 <= stride <= text_len:
        room = f"the window ({window})" if bos is None else f"the window less its BOS ({text_len})"
        raise WorkbenchError(f"The stride must be between 1 and {room}, not {stride}.")
    n = len(ids)
    least = 1 if bos is not None else 2
    if n < least:
        raise WorkbenchError(
            f"The text has {n} token{'s' if n != 1 else ''}; perplexity needs at least {least}"
            + (" (one to predict from)." if least == 2 else ".")
        )
    prefix = (bos,) if bos is not None else ()
    # A window's first text token is predicted from BOS when there is one; without, it is context only.
    lead = 0 if bos is not None else 1
    done = 0  # text tokens [0, done) are predicted already
    spans: list[Span] = []
    for begin in range(0, n, stride):
        end = min(begin + text_len, n)
        first = max(done, begin + lead)
        if end > first:
            spans.append(Span(prefix + tuple(ids[begin:end]), first - begin + len(prefix)))
        done = end
        if end == n:
            break
    return spans


def bos_token(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer starts every text with it (what the model saw in training), else None."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return int(bos) if ids and ids[0] == bos else None


def tokenize_text(tokenizer: Any, text: str) -> list[int]:
    """The text's token ids, without special tokens (no BOS/EOS added)."""
    if not text:
        raise WorkbenchError("The text is empty; perplexity needs at least 2 tokens.")
    # A long text is tokenized whole on purpose; silence the "longer than the maximum length" warning.
    verbose = getattr(tokenizer, "verbose", None)
    if verbose is not None:
        tokenizer.verbose = False
    try:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    finally:
        if verbose is not None:
            tokenizer.verbose = verbose


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad if pad is not None else 0)


def _forward_batch(model: Any, batch: Sequence[Span], pad_id: int, device: Any) -> list[float]:
    """Summed NLL of the predicted tokens of each span in one right-padded forward pass."""
    import torch
    import torch.nn.functional as F

    width = max(len(s.ids) for s in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, span in enumerate(batch):
        n = len(span.ids)
        input_ids[row, :n] = torch.tensor(span.ids, dtype=torch.long)
        mask[row, :n] = 1
        labels[row, span.first : n] = input_ids[row, span.first : n]
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
    labels = labels.to(logits.device)
    # Row by row, so the float32 copy of bf16 logits is one row at a time, not the whole batch.
    return [
        F.cross_entropy(logits[row, :-1].float(), labels[row, 1:], ignore_index=IGNORE, reduction="sum").item()
        for row in range(len(batch))
    ]


def score_spans(
    model: Any, spans: Sequence[Span], *, pad_id: int, batch_size: int = 8, progress: Any = None
) -> tuple[list[float], float]:
    """Summed NLL (nats) of each span's predicted tokens, in input order, and the seconds it took.

    Spans are batched longest first, so a batch holds spans of similar length and pads little;
    padding never changes a span's NLL (masked in attention, label -100).

    Args:
        model: A transformers causal LM (or a PeftModel) in eval mode.
        spans: What to score.
        pad_id: Token id used for padding (its value never matters: it is masked).
        batch_size: Spans per forward pass.
        progress: Optional callable `progress(n_done_spans)` after each batch.
    """
    import torch

    if batch_size < 1:
        raise WorkbenchError(f"The batch size must be at least 1, not {batch_size}.")
    device = next(model.parameters()).device
    order = sorted(range(len(spans)), key=lambda i: -len(spans[i].ids))
    nll = [0.0] * len(spans)
    started = time.perf_counter()
    with torch.inference_mode():
        for at in range(0, len(order), batch_size):
            chunk = order[at : at + batch_size]
            for i, value in zip(chunk, _forward_batch(model, [spans[i] for i in chunk], pad_id, device), strict=True):
                nll[i] = value
            if progress is not None:
                progress(len(chunk))
    return nll, time.perf_counter() - started


def summarize(
    spans: Sequence[Span], nll: Sequence[float], seconds: float, n_bytes: int = 0, **extra: Any
) -> Perplexity:
    """Aggregate per-span NLL sums into a `Perplexity` (mean over all predicted tokens, not over spans)."""
    predicted = sum(s.predicted for s in spans)
    if predicted == 0:
        raise WorkbenchError("Nothing to predict: every sequence is shorter than 2 tokens.")
    total = math.fsum(nll)
    mean = total / predicted
    fed = sum(len(s.ids) for s in spans)
    return Perplexity(
        mean_nll=mean,
        perplexity=math.exp(mean),
        predicted_tokens=predicted,
        total_nll=total,
        input_tokens=fed,
        sequences=len(spans),
        seconds=seconds,
        tokens_per_s=fed / seconds if seconds > 0 else 0.0,
        bytes=n_bytes,
        bits_per_byte=(total / math.log(2)) / n_bytes if n_bytes else None,
        per_sequence=[(v, s.predicted) for v, s in zip(nll, spans, strict=True)],
        **extra,
    )


def context_window(model: Any) -> int | None:
    """The most positions the model accepts, when its config says."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(value) if value else None


def perplexity_of_text(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    window: int = 512,
    stride: int | None = None,
    batch_size: int = 8,
    progress: Any = None,
) -> Perplexity:
    """Perplexity of `text` under `model` (module docstring: the definition).

    Args:
        model: A causal LM in eval mode (a PeftModel with the wanted adapter active is fine).
        tokenizer: Its tokenizer.
        text: The text; at least 2 tokens long. Shorter than one window is fine: one short window.
        window: Tokens per window, at most the model's context window.
        stride: None for non-overlapping windows; else the sliding-window stride (1..window).
        batch_size: Windows per forward pass (never changes the result).
        progress: Optional callable `progress(n_done_windows)`.

    Raises:
        WorkbenchError: Fewer than 2 tokens, a bad window/stride/batch size, or a window past the context.
    """
    limit = context_window(model)
    if limit and window > limit:
        raise WorkbenchError(f"The window of {window} tokens is longer than this model's context of {limit}.")
    bos = bos_token(tokenizer)
    spans = text_windows(tokenize_text(tokenizer, text), window, stride, bos)
    nll, seconds = score_spans(model, spans, pad_id=_pad_id(tokenizer), batch_size=batch_size, progress=progress)
    text_len = window - 1 if bos is not None else window
    return summarize(
        spans,
        nll,
        seconds,
        n_bytes=len(text.encode("utf-8")),
        window=window,
        stride=stride or text_len,
        bos=bos is not None,
    )


def _end_of_turn(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for token in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return ids


def response_span(tokenizer: Any, prompt: Sequence[Mapping[str, str]], response: str) -> Span:
    """The tokens of `prompt` + `response` in the chat template; the response's tokens are the predicted ones.

    The prediction targets run from the end of the prompt (with the assistant cue) to the first
    end-of-turn token inclusive, so a model is also scored on knowing where to stop; template text
    after it (a newline) is not scored.

    Raises:
        WorkbenchError: The chat template does not render the prompt as a prefix of the conversation.
    """
    messages = [{"role": m["role"], "content": m["content"]} for m in prompt]

    def encode(msgs: list[dict[str, str]], cue: bool) -> list[int]:
        out = tokenizer.apply_chat_template(msgs, add_generation_prompt=cue, tokenize=True, return_dict=True)
        return list(out["input_ids"])

    head = encode(messages, True)
    full = encode([*messages, {"role": "assistant", "content": response}], False)
    if full[: len(head)] != head or len(full) <= len(head):
        raise WorkbenchError(
            "This model's chat template does not render the prompt as the start of the conversation, "
            "so the response's tokens cannot be told apart."
        )
    stops = _end_of_turn(tokenizer)
    end = next((i + 1 for i in range(len(head), len(full)) if full[i] in stops), len(full))
    return Span(tuple(full[:end]), len(head))


def response_perplexity(
    model: Any,
    tokenizer: Any,
    examples: Sequence[tuple[Sequence[Mapping[str, str]], str]],
    *,
    batch_size: int = 8,
    progress: Any = None,
) -> Perplexity:
    """Perplexity of reference responses given their prompts (prompt tokens fed, never counted).

    Args:
        model: A causal LM in eval mode.
        tokenizer: Its tokenizer, with a chat template.
        examples: (prompt messages ending with the user's turn, reference response) pairs.
        batch_size: Examples per forward pass (never changes the result).
        progress: Optional callable `progress(n_done_examples)`.

    Raises:
        WorkbenchError: No examples, or an example longer than the model's context window.
    """
    if not examples:
        raise WorkbenchError("There are no examples to score.")
    if not getattr(tokenizer, "chat_template", None):
        raise WorkbenchError(
            "This model has no chat template (a base model), so a reply cannot be told apart from its prompt: "
            "response perplexity is for chat models; measure a base model with text perplexity."
        )
    spans = [response_span(tokenizer, prompt, response) for prompt, response in examples]
    limit = context_window(model)
    for i, span in enumerate(spans):
        if limit and len(span.ids) > limit:
            raise WorkbenchError(
                f"Example {i + 1} is {len(span.ids)} tokens with its prompt, "
                f"longer than this model's context of {limit}."
            )
    nll, seconds = score_spans(model, spans, pad_id=_pad_id(tokenizer), batch_size=batch_size, progress=progress)
    n_bytes = sum(len(response.encode("utf-8")) for _, response in examples)
    return summarize(spans, nll, seconds, n_bytes=n_bytes)
