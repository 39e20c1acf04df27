"""The dashboard's roles and visitor limits, without the model: who a Streamlit run's caller is, the error funnel,
and the pages a visitor of a public dashboard sees (AppTest).

Run: .venv/bin/python -m pytest -q tests/test_dashboard_access.py
AppTest has no request context, so the caller logic is tested as a unit with Streamlit's own headers class, and
the pages' behaviour for a visitor by making the settings public (WORKBENCH_ADMIN_OPEN=0 stands in for listening
on 0.0.0.0, as tests/fixtures/servers.public_app_env does for the app). A visitor does not see the training loss
curves (the admin token shows them; a wrong one gets the one sentence), cannot type a rater name, and is refused
with one sentence, before the model is asked, a sweep or prompt-set run beyond their reply limit or size, a
max-new-tokens past theirs, or a checkpoint kind the server does not offer them. An invalid WORKBENCH_DB_URL is
shown without its password. The same with a real browser and a real `streamlit run` is in
tests/e2e/test_dashboard_public.py; visitors' Compare generations are in tests/test_dashboard_visitors.py.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
from streamlit.runtime.context import StreamlitHeaders

from workbench.access import SHELL
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.gate.checkpoints import check_checkpoint
from workbench.gate.limits import RateLimit
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]
PORT = "8501"


def headers(**extra: str) -> StreamlitHeaders:
    """Headers as Streamlit hands them to a run (`st.context.headers`), from a browser on this machine."""
    pairs = [("host", f"localhost:{PORT}"), ("origin", f"http://localhost:{PORT}"), ("upgrade", "websocket")]
    pairs = [(k, v) for k, v in pairs if k not in extra] + [(k.replace("_", "-"), v) for k, v in extra.items()]
    return StreamlitHeaders(pairs)


def test_a_run_is_this_machines_only_from_loopback_with_loopback_host_and_origin_and_no_proxy(tmp_path):
    from pages.common import caller_from

    laptop = Settings(home=tmp_path)  # the dashboard on 127.0.0.1 (`make dashboard`)
    # Streamlit reports a loopback peer as None.
    owner = caller_from(None, headers(), laptop)
    assert owner.local and owner.address == "127.0.0.1" and laptop.is_owner(owner)
    assert caller_from("127.0.0.1", headers(host="127.0.0.1:8501"), laptop).local
    for who in (
        caller_from(None, headers(host=f"rebind.example:{PORT}"), laptop),  # DNS rebinding
        caller_from(None, headers(origin="http://evil.example"), laptop),  # another site's page
        caller_from(None, headers(x_forwarded_for="203.0.113.9"), laptop),  # an nginx on this host
        caller_from(None, StreamlitHeaders([]), laptop),  # no connection any more: not the owner
        caller_from("203.0.113.7", headers(), laptop),
    ):
        assert not who.local and not laptop.is_owner(who)
    assert caller_from("203.0.113.7", headers(), laptop).address == "203.0.113.7"
    # Behind one trusted proxy, the visitor is the proxy's own entry, never what the client wrote before it.
    behind = Settings(home=tmp_path, trusted_proxies=1)
    spoofed = headers(x_forwarded_for="127.0.0.1, 198.51.100.4")
    assert caller_from("10.0.0.2", spoofed, behind).address == "198.51.100.4"
    assert not caller_from(None, spoofed, behind).local
    assert not Settings(home=tmp_path, host="0.0.0.0").is_owner(owner)  # a public dashboard has no owner
    assert caller_from(MagicMock(), StreamlitHeaders([]), laptop) is SHELL  # AppTest's mock runtime: in process


def test_errors_are_masked_shortened_and_one_line(monkeypatch):
    from pages.common import sentence
    from workbench.gate.sentence import SENTENCE_CHARS

    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdefXYZ")
    text = sentence(
        "Could not reach postgresql://wb:hunter2@db.internal/wb with key sk-live-0123456789abcdefXYZ\n"
        "while reading /srv/workbench/models/adapters/run/x.bin; " + "details " * 100
    )
    assert "hunter2" not in text and "sk-live" not in text and "/srv/" not in text and "\n" not in text
    assert "…/x.bin" in text and len(text) == SENTENCE_CHARS and text.endswith("…")
    assert sentence("The prompt is empty.") == "The prompt is empty."


def test_a_batch_takes_its_whole_count_from_the_reply_limit_or_nothing():
    limit = RateLimit(5, 60.0, "replies")
    limit.take("v", 3)
    with pytest.raises(WorkbenchError, match="That asks for 3 replies and you have 2 left this minute"):
        limit.take("v", 3)
    limit.take("v", 2)  # the refused batch took nothing
    with pytest.raises(WorkbenchError, match="reached the limit of 5 replies per minute"):
        limit.take("v")
    with pytest.raises(WorkbenchError, match="That asks for 9 replies; the limit here is 5 per minute"):
        limit.take("w", 9)
    limit.take("w", 5)
    RateLimit(0, 60.0, "replies").take("v", 10_000)  # 0: no limit


def test_visitors_choose_only_the_checkpoint_kinds_the_server_offers(tmp_path):
    settings = Settings(home=tmp_path)  # default: base and adapters
    check_checkpoint(settings, False, "base")
    check_checkpoint(settings, False, "run/checkpoint-4")
    with pytest.raises(WorkbenchError, match="Remote models are not offered to visitors"):
        check_checkpoint(settings, False, "remote:gpt")
    check_checkpoint(settings, True, "remote:gpt")  # the owner chooses any
    with pytest.raises(WorkbenchError, match="too long"):
        check_checkpoint(settings, False, "x" * 301)


# --- the pages, through AppTest ------------------------------------------------------------------------------


@pytest.fixture
def board(tmp_path, monkeypatch):
    """A dashboard over a small store holding one training run's loss log, listening on loopback; `public()`
    makes it a public one (no owner)."""
    import streamlit as st
    from streamlit import config

    db = tmp_path / "store.db"
    with Store(f"sqlite:///{db}") as store:
        for step, loss in ((1, 2.9), (2, 2.5)):
            store.add_training_log("run-1", step, loss=loss, eval_loss=loss + 0.1)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_DB_URL", f"sqlite:///{db}")
    config.set_option("server.address", "127.0.0.1")
    st.cache_resource.clear()
    yield SimpleNamespace(url=f"sqlite:///{db}", public=lambda: monkeypatch.setenv("WORKBENCH_ADMIN_OPEN", "0"))
    config.set_option("server.address", "")
    st.cache_resource.clear()


def on(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90).run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at) -> list[str]:
    return [e.value.replace("\\", "") for e in at.error]


def loss_charts(at) -> int:
    return sum('"Loss · run-1"' in c.proto.spec for c in at.get("plotly_chart"))


def test_loss_curves_are_the_admins_only(board, monkeypatch):
    assert loss_charts(on("metrics")) == 1  # the owner on their own dashboard
    board.public()
    at = on("metrics")
    assert loss_charts(at) == 0 and not at.dataframe and not at.text_input
    assert "shown to the admin only" in at.caption[0].value
    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", "loss-s3cret")
    at = on("metrics")
    assert loss_charts(at) == 0 and "give the admin token" in at.caption[0].value
    at.text_input(key="loss-token").input("guess").run()
    assert errors(at) == ["This action needs the admin token (WORKBENCH_ADMIN_TOKEN is set on this server)."]
    assert loss_charts(at) == 0
    at.text_input(key="loss-token").input("loss-s3cret").run()
    assert loss_charts(at) == 1 and not at.error


def test_a_visitor_rates_under_their_voter_id_and_cannot_type_a_name(board):
    assert [t.key for t in on("rate").text_input] == ["rate-name"]
    board.public()
    at = on("rate")
    assert not at.text_input and any(c.value.startswith("Rating anonymously as visitor") for c in at.caption)


def test_a_visitors_lab_and_prompt_set_runs_are_refused_beyond_their_limits(board, monkeypatch):
    board.public()
    monkeypatch.setenv("WORKBENCH_RATE_LIMIT", "4")
    lab = on("lab")
    lab.number_input(key="lab-samples").set_value(3)  # 2 x 2 cells x 3 samples = 12 generations
    lab.button(key="lab-go").click().run()
    assert errors(lab) == ["That asks for 12 replies; the limit here is 4 per minute."]
    assert "lab-result" not in lab.session_state
    lab.text_area(key="lab-prompt").input("x" * 8_001).run()
    assert errors(lab) == ["The prompt is 8,001 characters; the limit here is 8,000."]

    at = on("compare")
    at.selectbox(key="cmp-run-set").set_value("vicuna-bench")
    at.number_input(key="cmp-run-limit").set_value(0).run()  # all 80
    at.button(key="cmp-run-go").click().run()
    # the base model alone is compared under two settings: 80 prompts x 2
    assert errors(at) == ["That run asks for 160 outputs; a visitor's run is at most 64: run fewer prompts."]
    at.number_input(key="cmp-run-limit").set_value(5).run()
    at.button(key="cmp-run-go").click().run()
    assert errors(at) == ["That asks for 5 replies; the limit here is 4 per minute."]
    at.number_input(key="cmp-run-limit").set_value(2)
    at.number_input(key="cmp-max-new-tokens").set_value(2048).run()
    at.button(key="cmp-run-go").click().run()
    assert errors(at) == ["Max new tokens is 2,048; the limit here is 1,024."]
    with Store(board.url) as store:
        assert store.generations().empty  # nothing was generated


def test_a_visitor_is_offered_only_the_checkpoints_the_server_allows(board, monkeypatch):
    board.public()
    monkeypatch.setenv("WORKBENCH_VISITOR_CHECKPOINTS", "adapters")  # no base model for visitors
    at = on("lab")
    assert [i.value for i in at.info] == ["No checkpoint is offered to visitors on this server."]
    at = on("compare")
    assert [i.value for i in at.info] == ["No checkpoint is offered to visitors on this server."]
    assert "cmp-go" not in [b.key for b in at.button]  # nothing to compare, so no button that would fail


def test_an_invalid_database_url_is_shown_without_its_password(board, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB_URL", "postgresql//wb:hunter2@db.internal/wb")
    at = on("metrics")
    (shown,) = errors(at)
    assert shown.startswith("The database URL") and shown.endswith("is not a valid SQLAlchemy URL.")
    assert "hunter2" not in shown and ":***@db.internal" in shown
    monkeypatch.setenv("WORKBENCH_DB_URL", "postgresql+psycopg://wb:hunter2@db.internal:port/wb")
    at = on("rate")
    assert errors(at) and "hunter2" not in errors(at)[0]


PAGES = ("compare", "metrics", "rate", "leaderboard", "lab")
HOSTILE_TEXT = {"300 kB of text": "x" * 300_000, "odd Unicode": "\u202e\u0000\ufeff\u0301" + "\U0001f600" * 8}
HOSTILE_NUMBERS = (10**15, -(10**15), 0.5, 2**63)


def _rows(url: str) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.mark.parametrize("page", PAGES)
def test_hostile_values_in_every_widget_of_every_page_get_a_sentence_and_change_nothing(board, page):
    """The dashboard's sweep (the app's is tests/e2e/test_public_space.py): as a visitor, every text box and every
    number box of the page gets hostile values at once. Each run ends in the page drawn again or one sentence,
    never a traceback, and the store holds what it held. (Buttons that act on typed text refuse oversized text with
    a sentence before any model runs: tested per page above.)"""
    board.public()
    at = on(page)
    before = _rows(board.url)  # with the shipped prompt sets, loaded when the store is first opened
    assert at.text_input or at.text_area or at.number_input or page in ("metrics", "leaderboard", "rate")
    for name, value in HOSTILE_TEXT.items():
        at = on(page)
        for widget in [*at.text_input, *at.text_area]:
            widget.input(value)
        at.run()
        assert not at.exception, (page, name, [e.value for e in at.exception])
        assert all("\n" not in e and len(e) <= 300 for e in errors(at)), (page, name, errors(at))
    for value in HOSTILE_NUMBERS:
        at = on(page)
        for widget in at.number_input:
            widget.set_value(value)
        at.run()
        assert not at.exception, (page, value, [e.value for e in at.exception])
    assert _rows(board.url) == before
