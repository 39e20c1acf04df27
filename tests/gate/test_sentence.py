"""The one public sentence every error passes: secrets, URLs and server paths hidden, one line, capped, and linear
time on any input (the redaction patterns were quadratic on `a.a.a.…`: 0.75 s on 32 kB, minutes on a body)."""

from __future__ import annotations

import subprocess
import sys

from workbench.gate.sentence import SENTENCE_CHARS, WINDOW, public_sentence


def test_the_sentence_hides_secrets_urls_and_paths_on_one_capped_line(tmp_path):
    said = public_sentence(
        f"The server at http://10.0.0.5:8000/v1 (key sk-abcdefghijklmnopqrstuvwx) refused\n"
        f"reading {tmp_path}/models/run/x.bin and /etc/shadow " + "on and on " * 100,
        [tmp_path],
    )
    assert "10.0.0.5" not in said and "sk-abc" not in said and "/etc" not in said and str(tmp_path) not in said
    assert "a remote server" in said and "…/models/run/x.bin" in said and "…/shadow" in said
    assert "\n" not in said and len(said) == SENTENCE_CHARS and said.endswith("…")
    assert public_sentence("The message is empty.") == "The message is empty."
    assert public_sentence(None) == ""


def test_a_secret_straddling_the_cut_is_masked_before_the_cut():
    said = public_sentence("x " * (WINDOW // 2 - 10) + "sk-" + "a" * 40)
    assert "sk-" not in said and len(said) <= SENTENCE_CHARS


def test_redaction_is_linear_on_hostile_text_of_two_megabytes():
    # In a child process with a generous limit: a quadratic pattern takes hours on this input, a linear one under a
    # second; a hang must fail the test, not the whole run.
    code = (
        "from workbench.safety.redact import redact, hide_urls, hide_paths\n"
        "for unit in ('a.', 'sk-a-', 'a:', 'x://a:b', '/a', 'hf_', 'password=', 'bearer '):\n"
        "    text = unit * (2_000_000 // len(unit))\n"
        "    hide_paths(hide_urls(redact(text, [])))\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr
