"""Rebuild train.jsonl and heldout.jsonl from FastChat's dummy_conversation.json (ShareGPT form).

Run: python data/fastchat_identity/convert.py /path/to/dummy_conversation.json
Each conversation becomes one {"messages": [...]} line (human -> user, gpt -> assistant), keeping its
FastChat id; a fixed-seed shuffle puts 50 conversations in heldout.jsonl, which is never trained on.
"""

import json
import random
import sys
from pathlib import Path

HELD_OUT = 50
SEED = 0
ROLES = {"human": "user", "gpt": "assistant"}


def main(source: str) -> None:
    rows = json.loads(Path(source).read_text(encoding="utf-8"))
    converted = [
        {"id": r["id"], "messages": [{"role": ROLES[t["from"]], "content": t["value"]} for t in r["conversations"]]}
        for r in rows
    ]
    random.Random(SEED).shuffle(converted)
    here = Path(__file__).resolve().parent
    for name, part in (("heldout.jsonl", converted[:HELD_OUT]), ("train.jsonl", converted[HELD_OUT:])):
        with open(here / name, "w", encoding="utf-8") as f:
            for row in part:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
