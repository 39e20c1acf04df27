"""The chat's reply log is bounded by the text it holds, not only by counts: session hashes are the client's to
choose, so a flood of sessions with long conversations must not grow the app's memory without end."""

from __future__ import annotations

from workbench.ui.chat_feedback import Entry, ReplyLog


def entry(text: str, output: str = "ok") -> Entry:
    return Entry([{"role": "user", "content": text}], output, "base", {})


def test_the_log_keeps_its_text_under_the_bounds_and_the_newest_replies():
    log = ReplyLog(session_chars=10_000, total_chars=50_000)
    for i in range(200):  # 200 sessions, each with three replies to 4,000-character conversations
        for j in range(3):
            log.add(f"session-{i}", entry("x" * 4_000 + str(j), output=f"reply {j}"))
        assert log.total <= 50_000
    assert log.find("session-199", [{"role": "user", "content": "x" * 4_000 + "2"}], "reply 2") is not None
    assert log.find("session-0", [{"role": "user", "content": "x" * 4_000 + "2"}], "reply 2") is None  # evicted
    kept = [
        log.find("session-199", [{"role": "user", "content": "x" * 4_000 + str(j)}], f"reply {j}") for j in range(3)
    ]
    assert kept[0] is None and kept[1] is not None  # a session past its own bound drops its oldest reply first


def test_regenerated_replies_stay_reachable_only_from_the_newest():
    log = ReplyLog()
    first = log.add("s", entry("hi", "one"))
    second = log.add("s", entry("hi", "two"))
    third = log.add("s", entry("hi", "three"))
    assert third.replaced == [second, first] and second.replaced == []
    assert log.total == sum(e.chars() for e in (first, second, third))
