"""`python -m workbench chat`: one reply to `--prompt`, or an interactive conversation.

    python -m workbench chat --prompt "What is the capital of France?" --temperature 0 --json
    python -m workbench chat --adapter my-run --system "Answer briefly."   # REPL; /reset, /quit

With `--json` the reply and its stats print as one JSON object; otherwise the reply streams to stdout
and the stats line goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli.common import add_generation_flags, add_model_flags, generation_from, print_json, settings_from
from workbench.errors import WorkbenchError
from workbench.generation.settings import GenerationSettings, Message


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("chat", help="chat with a model (one-shot --prompt or interactive)")
    p.add_argument("--prompt", help="send this one message and exit (default: interactive)")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--adapter", default=None, help="adapter name from `models` (default: the base model)")
    p.add_argument("--json", action="store_true", help="print the reply and its stats as one JSON object")
    add_model_flags(p)
    add_generation_flags(p)
    return p


def _stream(engine, messages: list[Message], settings: GenerationSettings, adapter: str | None, quiet: bool):
    reply = engine.stream(messages, settings, adapter)
    for chunk in reply:
        if not quiet:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    if not quiet:
        sys.stdout.write("\n")
        print(f"[{reply.stats.summary()}]", file=sys.stderr)
    return reply


def run(args: argparse.Namespace) -> int:
    from workbench.generation.engine import ChatEngine

    settings = generation_from(args, checkpoint=args.adapter)  # validate flags before the slow model load
    if args.prompt is not None and not args.prompt.strip():
        raise WorkbenchError("The prompt is empty: pass some text with --prompt.")
    engine = ChatEngine.load(settings_from(args))
    system = [{"role": "system", "content": args.system}] if args.system.strip() else []
    if args.prompt is not None:
        messages = [*system, {"role": "user", "content": args.prompt}]
        reply = _stream(engine, messages, settings, args.adapter, quiet=args.json)
        if args.json:
            print_json({"reply": reply.text, "stats": reply.stats.to_dict()})
        return 0
    return _repl(engine, system, settings, args.adapter)


def _repl(engine, system: list[Message], settings: GenerationSettings, adapter: str | None) -> int:
    print(
        f"Chatting with {engine.base.name}{' + ' + adapter if adapter else ''}. /reset clears, /quit leaves.",
        file=sys.stderr,
    )
    history: list[Message] = []
    while True:
        try:
            line = input("> ")
        except EOFError:
            return 0
        if line.strip() in ("/quit", "/exit"):
            return 0
        if line.strip() == "/reset":
            history = []
            continue
        if not line.strip():
            continue
        messages = [*system, *history, {"role": "user", "content": line}]
        try:
            reply = _stream(engine, messages, settings, adapter, quiet=False)
        except WorkbenchError as exc:  # one bad turn does not end the conversation
            print(f"error: {exc}", file=sys.stderr)
            continue
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": reply.text}]
