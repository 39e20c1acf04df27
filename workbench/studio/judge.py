"""An LLM judge on the store's pairs: each pair judged in both orders, one vote per pair by "judge:<model>".

    router = Router(settings)                                   # or a ChatEngine
    run = judge(router, store, "base")                          # every pair people voted on, not judged yet
    run = judge(router, store, "remote:gpt4o-mini", prompt_set="vicuna-bench", limit=50, progress=bar)
    run.judged, run.skipped, run.unparsed, run.tokens           # what this run did
    parse_verdict("Verdict: B\nBecause ...")                    # "B"

The judge is any checkpoint a request can name: "base" (the embedded model on llama.cpp), an adapter, or a remote
OpenAI-compatible model ("remote:NAME"). Its prompt (`DEFAULT_PROMPT`, ours, in the style of the MT-bench paper's
pairwise prompt; or the owner's, `read_prompt_file`) shows the question and the two answers as Assistant A and B.
Each pair is judged twice, once with each output shown first, as the paper does to cancel position bias: the
vote is the verdict both orders agree on, and a verdict that flips with the order is a tie. Both verdicts and the
start of both replies go into the vote's reason (`workbench.store.judging.judge_reason`), which is where the
judge's position consistency is read from later. A reply with no verdict is reported (`JudgeRun.unparsed`) and
the pair is not voted on, so a later run tries it again; a pair this judge already voted on is skipped. Pairs on
prompts visitors typed (the Arena's battles, chats, prompts waiting for approval) are judged only when the owner
turns WORKBENCH_JUDGE_VISITOR_PROMPTS on: a visitor's text would reach the judge's prompt (injection) and, with a
remote judge, cost the owner paid calls. The
requests go through the engine's batched path (`start_many`), so llama.cpp's slots or a server's batching judge
several pairs at once, and each pair's vote is stored as soon as both its replies are in: a run stopped half-way
keeps every vote it made. Torch-free: the engine is passed in.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings
from workbench.store import JudgePair, judge_rater
from workbench.store.judging import judge_reason

if TYPE_CHECKING:
    from workbench.generation.engine import ChatEngine
    from workbench.generation.router import Router
    from workbench.generation.streaming import Reply
    from workbench.store import Store

PLACEHOLDERS = ("question", "answer_a", "answer_b")
_PLACEHOLDER = re.compile(r"\{(question|answer_a|answer_b)\}")
DEFAULT_MAX_NEW_TOKENS = 96  # the verdict comes first; the reason after it may be cut
SHOWN = 300  # characters of an unparsed reply kept in the report

# Ours, in the MT-bench pairwise prompt's style. The verdict comes first and its form is repeated at the end of the
# user message: a 135M model follows "Verdict: A" there, and loses the form when it is only in the system prompt.
DEFAULT_SYSTEM = (
    "You are an impartial judge. Compare two answers to the user's question and decide which one is better: more "
    "helpful, correct and relevant, following the user's instructions. Neither the order of the answers nor their "
    'length may sway you. Reply with the verdict first, in exactly this form: "Verdict: A", "Verdict: B" or '
    '"Verdict: tie" (equally good or equally bad). Then give one short sentence of reason.'
)
DEFAULT_TEMPLATE = (
    "[Question]\n{question}\n\n"
    "[Answer A]\n{answer_a}\n[End of answer A]\n\n"
    "[Answer B]\n{answer_b}\n[End of answer B]\n\n"
    'Which answer is better? Reply "Verdict: A", "Verdict: B" or "Verdict: tie", then one sentence why.'
)


@dataclass(frozen=True)
class JudgePrompt:
    """A pairwise judge prompt: a user message with {question}, {answer_a} and {answer_b}, and a system prompt.

    Attributes:
        template: The user message; each placeholder must appear (other braces are left as they are).
        system: The system prompt, or None.
        source: Where it came from ("built-in" or the file's path), for the report.
    """

    template: str
    system: str | None = None
    source: str = "built-in"

    def __post_init__(self) -> None:
        missing = [p for p in PLACEHOLDERS if "{" + p + "}" not in self.template]
        if missing:
            raise WorkbenchError(
                f"The judge prompt must contain {{question}}, {{answer_a}} and {{answer_b}}; "
                f"{', '.join('{' + p + '}' for p in missing)} is missing."
            )

    def messages(self, question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
        """The conversation sent to the judge, with the two answers as A and B."""
        values = {"question": question, "answer_a": answer_a, "answer_b": answer_b}
        # One pass, so an answer that itself contains "{answer_b}" is shown as typed, never filled in.
        user = _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.template)
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": user}]


DEFAULT_PROMPT = JudgePrompt(DEFAULT_TEMPLATE, DEFAULT_SYSTEM)


def read_prompt_file(path: str | Path) -> JudgePrompt:
    """A judge prompt from a file: a .json object in FastChat's judge-prompt form (`prompt_template`, optional
    `system_prompt`), or any other text file whose whole text is the user message.

    Raises:
        WorkbenchError: A missing or unreadable file, bad JSON, or a template without its placeholders.
    """
    from workbench.jsonl import read_text

    path = Path(path)
    text = read_text(path)
    if path.suffix.lower() != ".json":
        return JudgePrompt(text, None, str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkbenchError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}.") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt_template"), str):
        raise WorkbenchError(f"{path} must be a JSON object with a prompt_template (and optionally system_prompt).")
    system = data.get("system_prompt")
    if system is not None and not isinstance(system, str):
        raise WorkbenchError(f"{path}: system_prompt must be text.")
    return JudgePrompt(data["prompt_template"], system or None, str(path))


# --- reading a verdict ------------------------------------------------------------------------------------

_BRACKETS = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)  # MT-bench's own form: [[A]], [[B]], [[C]]
_VERDICT = re.compile(r"\bverdict\b", re.IGNORECASE)
_FILLER = {"is", "the", "my", "final", "assistant", "answer", "response", "model", "of"}
_WORDS = {"a": "A", "b": "B", "c": "tie", "tie": "tie", "draw": "tie", "equal": "tie", "neither": "tie"}
_BARE = re.compile(r"^\W*(?:assistant\s+|answer\s+)?(a|b|tie)\W*$", re.IGNORECASE)
_BETTER = re.compile(r"\b(?:assistant|answer)\s+(a|b)\b\W*(?:is|was)\s+(?:\w+\s+)?(?:better|best)\b", re.IGNORECASE)


def _after(text: str) -> str | None:
    """The verdict word a "Verdict" is followed by (past filler words and punctuation), or None."""
    for word in re.findall(r"[A-Za-z]+", text[:40]):
        word = word.lower()
        if word not in _FILLER:
            return _WORDS.get(word)
    return None


def _one(found: Sequence[str | None]) -> str | None:
    kinds = {f for f in found if f is not None}
    return kinds.pop() if len(kinds) == 1 else None


def parse_verdict(reply: str) -> str | None:
    """The verdict in a judge's reply: "A", "B" or "tie", or None when it gives none or contradicts itself.

    Read, in order: MT-bench's "[[A]]" / "[[B]]" / "[[C]]" marks; "Verdict: A" (also "verdict is B", "Verdict:
    **tie**", "Final verdict: Assistant A"); a first line that is only "A", "B" or "tie"; "Answer B is better"
    ("assistant A is clearly better"). Within one form, two different verdicts (a reply that echoes the
    instructions' "Verdict: A ... Verdict: B") count as none.
    """
    text = reply or ""
    marks = [_WORDS[m.group(1).lower()] for m in _BRACKETS.finditer(text)]
    if marks:
        return _one(marks)
    said = [_after(text[m.end() :]) for m in _VERDICT.finditer(text)]
    if any(said):
        return _one(said)
    first = next((line for line in text.splitlines() if line.strip()), "")
    bare = _BARE.match(first)
    if bare:
        return _WORDS[bare.group(1).lower()]
    return _one([m.group(1).upper() for m in _BETTER.finditer(text)])


def about_generations(verdict: str, a_first: bool) -> str:
    """A verdict about the shown answers ("A", "B", "tie") as one about generations a and b."""
    if verdict == "tie":
        return "tie"
    return {"A": "a", "B": "b"}[verdict] if a_first else {"A": "b", "B": "a"}[verdict]


def combined(first: str, second: str) -> str:
    """The vote from the verdicts in both orders: the one they agree on, a tie when the verdict flipped."""
    return first if first == second else "tie"


def question_of(messages: Sequence[dict[str, str]]) -> str:
    """What the judge is shown as the question: the user's message, or the conversation up to it."""
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return turns[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in turns)


# --- a run ------------------------------------------------------------------------------------------------


@dataclass
class JudgeRun:
    """What one judge run did.

    Attributes:
        judge: The judge's rater name ("judge:<model>").
        checkpoint: The checkpoint that judged ("base", an adapter, "remote:NAME").
        prompt: The prompt's source ("built-in" or a file).
        candidates: Pairs on offer (the pairs people voted on, or the prompt set's).
        skipped: Pairs among them this judge had voted on already.
        judged: Pairs voted on now.
        unparsed: Replies without a verdict (pair ids, order, the reply's start); their pairs got no vote.
        failed: Requests that failed (pair ids, the error's sentence); their pairs got no vote.
        tokens: Prompt and completion tokens of every reply (the server's usage for a remote judge).
        remote: True when the judge is a remote model (its tokens are what the server bills).
        seconds: Wall time of the run.
    """

    judge: str
    checkpoint: str
    prompt: str
    candidates: int = 0
    skipped: int = 0
    judged: int = 0
    unparsed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    remote: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**self.__dict__, "tokens": {**self.tokens, "total": sum(self.tokens.values())}}


def judge_name(engine: ChatEngine | Router, checkpoint: str, name: str | None = None) -> str:
    """The rater name a judge votes under: "judge:" and `name`, or the checkpoint's name in the store."""
    return judge_rater(name or engine.store_name(checkpoint))


def _start(engine: ChatEngine | Router, requests: list) -> list[Reply | WorkbenchError]:
    """Start the requests together; when one is refused (a prompt too long for the judge), each on its own, so
    the refused ones come back as their error and the rest still run."""
    try:
        return list(engine.start_many(requests))
    except WorkbenchError:
        out: list[Reply | WorkbenchError] = []
        for request in requests:
            try:
                out.extend(engine.start_many([request]))
            except WorkbenchError as exc:
                out.append(exc)
        return out


def _requests(pair: JudgePair, prompt: JudgePrompt, settings: GenerationSettings, checkpoint: str) -> list:
    question = question_of(pair.messages)
    return [
        (prompt.messages(question, pair.output_a, pair.output_b), settings, checkpoint),
        (prompt.messages(question, pair.output_b, pair.output_a), settings, checkpoint),
    ]


def _verdicts(run: JudgeRun, pair: JudgePair, replies: list) -> tuple[list[str], list[str]] | None:
    """The pair's two verdicts about a and b and the replies' texts, or None (reported in `run`). Both replies
    are waited for, so that every token a server bills is counted."""
    texts, verdicts = [], []
    for order, reply in zip(("a,b", "b,a"), replies, strict=True):
        ids = {"generation_a": pair.a, "generation_b": pair.b, "order": order}
        try:
            if isinstance(reply, WorkbenchError):
                raise reply
            text, stats = reply.result()
        except WorkbenchError as exc:
            run.failed.append({**ids, "error": str(exc)})
            continue
        run.tokens["prompt"] += stats.prompt_tokens or 0
        run.tokens["completion"] += stats.new_tokens or 0
        verdict = parse_verdict(text)
        if verdict is None:
            run.unparsed.append({**ids, "reply": text[:SHOWN]})
            continue
        texts.append(text)
        verdicts.append(about_generations(verdict, order == "a,b"))
    return (verdicts, texts) if len(verdicts) == 2 else None


def judge(
    engine: ChatEngine | Router,
    store: Store,
    checkpoint: str,
    *,
    prompt: JudgePrompt = DEFAULT_PROMPT,
    prompt_set: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    visitor_prompts: bool = False,
) -> JudgeRun:
    """Judge every pair on offer that this judge has not voted on, and store one vote per pair.

    Args:
        engine: A ChatEngine or a Router (for remote judges).
        store: The store: the pairs are read from it, the votes written to it.
        checkpoint: The judge: "base", an adapter, or "remote:NAME[/ADAPTER]".
        prompt: The judge prompt (`DEFAULT_PROMPT` or `read_prompt_file(...)`).
        prompt_set: Judge this prompt set's pairs instead of the pairs people voted on.
        limit: At most this many pairs in this run.
        max_new_tokens: Longest reply (greedy decoding, seed 0).
        name: The judge's name after "judge:" (default: the checkpoint's name in the store).
        progress: Called with (pairs done, pairs to do) as pairs finish.
        visitor_prompts: Judge pairs on prompts visitors typed too (WORKBENCH_JUDGE_VISITOR_PROMPTS): off by
            default, so a visitor's text never reaches the judge (prompt injection; paid calls to a remote judge).
    """
    if limit is not None and limit < 1:
        raise WorkbenchError(f"The limit must be at least 1 pair, not {limit}.")
    started = time.perf_counter()
    rater = judge_name(engine, checkpoint, name)
    run = JudgeRun(rater, checkpoint, prompt.source)
    # Greedy and unpenalised: a verdict repeats the words of the question ("A", "B"), and chat defaults may change.
    settings = GenerationSettings(
        temperature=0, top_p=1, top_k=0, repetition_penalty=1.0, max_new_tokens=max_new_tokens, seed=0
    )
    queue = store.judge_pairs(rater, prompt_set=prompt_set, limit=limit, visitor_prompts=visitor_prompts)
    pairs, run.skipped, run.candidates = queue.pairs, queue.judged, queue.judged + queue.waiting
    backend, _ = engine.route(checkpoint)
    run.remote = backend.backend_name == "openai"
    batch = max(1, backend.slots)  # pairs at a time: two requests each, enough to keep every slot busy
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        replies = _start(engine, [r for pair in chunk for r in _requests(pair, prompt, settings, checkpoint)])
        try:
            for i, pair in enumerate(chunk):
                found = _verdicts(run, pair, replies[2 * i : 2 * i + 2])
                if found is not None:
                    (first, second), texts = found
                    reason = judge_reason(first, second, (texts[0], texts[1]))
                    store.add_vote(pair.a, pair.b, combined(first, second), rater=rater, reason=reason)
                    run.judged += 1
                if progress is not None:
                    progress(start + i + 1, len(pairs))
        finally:
            for reply in replies:
                if not isinstance(reply, WorkbenchError):
                    reply.cancel()  # a no-op for finished replies; stops the rest when the run is interrupted
    run.seconds = time.perf_counter() - started
    return run
