"""The Streamlit dashboard through streamlit.testing's AppTest: every page, on a store seeded with real outputs.

Run: .venv/bin/python -m pytest -q tests/test_dashboard.py
Compare shows one column per checkpoint, streams and stores real outputs and re-shows them from the store, and
runs a prompt set; Metrics draws the stored suite results (figure data = store rows); Rate records one vote or
score per item with names hidden until the vote; Leaderboard's numbers match a hand-computed case and its backend
filter keeps the votes whose both outputs a chosen backend made; a reason with
HTML/Markdown in it is shown literally; Lab sweeps two settings, shows a reply's tokens and saves the
setting with the checkpoint, and shows what a checkpoint changed against the base (a reply, and a suite's tokens
that moved most). The browser
versions (screenshots) are in tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.dashboard import CHECKPOINTS, LOSSES, RUN
from tests.ratings.by_hand import map_gap
from workbench.store import Store
from workbench.views.markup import plain_markdown

pytestmark = pytest.mark.slow  # the real model generates on Compare and Lab, and seeds the store
ROOT = Path(__file__).resolve().parents[1]
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)> ![pixel](http://example.com/p.png) $x$ :red[hi]"


def app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)


def on(page: str):
    at = app().run()
    if page != "compare":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> list[str]:
    """Everything the page shows as text, markdown or caption."""
    return [e.value for kind in ("text", "markdown", "caption", "success", "info", "error") for e in getattr(at, kind)]


def charts(at) -> list[dict]:
    """The page's plotly figures (as JSON)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _title(layout_part: dict | None) -> str:
    return ((layout_part or {}).get("title") or {}).get("text", "")


def chart(at, title: str = "", axis: str = "") -> dict:
    """The figure with this title (and this y-axis title, when given)."""
    return next(
        c for c in charts(at) if _title(c["layout"]) == title and (not axis or _title(c["layout"].get("yaxis")) == axis)
    )


def frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def shown_cells(at, column: str) -> list[str]:
    """The cells of the table that has `column`, as the page displays them (after the page's formatting)."""
    from streamlit import dataframe_util

    element = next(d for d in at.dataframe if column in d.value.columns)
    shown = dataframe_util.convert_arrow_bytes_to_pandas_df(element.proto.arrow_data.styler.display_values)
    return [str(v) for v in shown.to_numpy().ravel()]


def compare_columns(at) -> list[tuple[str, str, str]]:
    """(header, caption, output) of each comparison column."""
    out = []
    for column in at.columns:
        heads = [m.value for m in column.markdown if m.value.startswith("#### ")]
        if heads and column.text:
            out.append((heads[0][5:].replace("\\", ""), column.caption[0].value, column.text[0].value))
    return out


# --- Compare ----------------------------------------------------------------------------------------------


def test_compare_shows_a_column_per_checkpoint_stores_outputs_and_reshows_them(dash):
    base_name = dash.engine.base.name
    at = on("compare")
    at.text_area(key="cmp-prompt").input("Say hello in French.")
    at.multiselect(key="cmp-checkpoints").set_value(list(CHECKPOINTS))
    at.number_input(key="cmp-max-new-tokens").set_value(8)
    at.button(key="cmp-go").click().run()
    assert not at.exception and not at.error
    shown = compare_columns(at)
    assert [h for h, _, _ in shown] == list(CHECKPOINTS)
    assert all(c.startswith("Generated now") for _, c, _ in shown)
    with Store(dash.settings.db_url) as store:
        rows = store.generations()
    rows = rows[rows["prompt"] == "Say hello in French."]
    assert list(rows["checkpoint"]) == [base_name, *CHECKPOINTS[1:]]
    assert list(rows["output"]) == [o for _, _, o in shown]
    assert (rows["max_new_tokens"] == 8).all() and (rows["new_tokens"] <= 8).all() and (rows["seed"] == 0).all()
    assert len(set(rows["output"])) >= 2  # the random adapters visibly change the reply
    # the same request again: shown from the store, nothing generated
    at.button(key="cmp-go").click().run()
    again = compare_columns(at)
    assert all(c.startswith("From the store") for _, c, _ in again)
    assert [o for _, _, o in again] == [o for _, _, o in shown]
    with Store(dash.settings.db_url) as store:
        assert (store.generations()["prompt"] == "Say hello in French.").sum() == 3


def test_compare_refuses_bad_requests_with_one_sentence(dash):
    at = on("compare")
    at.multiselect(key="cmp-checkpoints").set_value(list(CHECKPOINTS[:2]))
    at.button(key="cmp-go").click().run()
    assert [e.value for e in at.error] == [
        plain_markdown("The prompt is empty: type one or pick one from a prompt set.")
    ]
    at.text_area(key="cmp-prompt").input("Hi")
    at.multiselect(key="cmp-checkpoints").set_value(["base"])
    at.button(key="cmp-go").click().run()
    assert "Choose 2 to 4 checkpoints" in at.error[0].value.replace("\\", "") and not compare_columns(at)


def test_compare_picks_a_prompt_from_a_set_and_runs_a_prompt_set_with_progress(dash):
    at = on("compare")
    at.radio(key="cmp-source").set_value("A prompt set").run()
    at.selectbox(key="cmp-set").set_value("vicuna-bench").run()
    assert at.text[0].value == "How can I improve my time management skills?"
    at.multiselect(key="cmp-checkpoints").set_value(list(CHECKPOINTS[:2]))
    at.number_input(key="cmp-max-new-tokens").set_value(6)
    at.selectbox(key="cmp-run-set").set_value("vicuna-bench")
    at.number_input(key="cmp-run-limit").set_value(1)
    at.button(key="cmp-run-go").click().run()
    assert [s.value for s in at.success] == ["Done: 2 outputs generated, 0 taken from the store."]
    with Store(dash.settings.db_url) as store:
        made = store.generations(prompt_set="vicuna-bench")
        first = store.prompts("vicuna-bench")[0]
    assert len(made) == 2 and set(made["prompt_id"]) == {first["id"]}
    at.button(key="cmp-run-go").click().run()  # again: everything comes from the store
    assert [s.value for s in at.success] == ["Done: 0 outputs generated, 2 taken from the store."]


# --- Metrics ------------------------------------------------------------------------------------------------


def test_metrics_page_charts_the_stored_results(dash):
    at = on("metrics")
    with Store(dash.settings.db_url) as store:
        bleu = store.eval_results(suite="identity_heldout", metric="bleu")
        logs = store.training_logs(RUN)
        examples = store.eval_examples(int(bleu["id"].iloc[-1]))
    bars = chart(at, "BLEU · identity_heldout")
    base_name = dash.engine.base.name
    assert bars["data"][0]["x"] == [base_name, *CHECKPOINTS[1:]]
    assert bars["data"][0]["y"] == pytest.approx(list(bleu.set_index("checkpoint").loc[bars["data"][0]["x"], "value"]))
    assert bars["data"][0]["customdata"][0].startswith("nrefs:") and "tok:13a" in bars["data"][0]["customdata"][0]
    (line,) = [s for s in bars["layout"]["shapes"] if s["type"] == "line"]
    assert line["y0"] == pytest.approx(bleu.set_index("checkpoint").loc[base_name, "value"])
    titles = {(c["layout"].get("title") or {}).get("text") for c in charts(at)}
    assert {"chrF · identity_heldout", "response perplexity · identity_heldout"} <= titles
    steps = chart(at, f"response perplexity · {RUN}")  # the first metric of the run's picker
    assert steps["data"][0]["x"] == [0, 2, 4]
    loss = chart(at, f"Loss · {RUN}")
    assert loss["data"][0]["y"] == [t for _, t, _ in LOSSES] == list(logs["train_loss"])
    assert loss["data"][1]["x"] == [2, 4] and loss["data"][1]["y"] == [v for _, _, v in LOSSES if v]
    table = frame_with(at, "hypothesis")
    assert sorted(table["hypothesis"]) == sorted(examples["hypothesis"])
    assert len(at.dataframe) >= 6  # a table under each chart, and the examples


def test_metrics_page_without_results_says_how_to_make_them(dash):
    dash.empty()
    at = on("metrics")
    assert "python -m workbench eval" in at.info[0].value and not at.get("plotly_chart")


# --- Rate ---------------------------------------------------------------------------------------------------


def test_rate_records_one_vote_hides_names_until_then_and_shows_the_reason_literally(dash):
    at = on("rate")
    at.text_input(key="rate-name").input("alice").run()
    item = at.session_state["rate-pair"][1]
    names = {item.left.checkpoint, item.right.checkpoint}
    assert not any(n in t for n in names for t in texts(at))  # hidden before the vote
    assert item.left.output in [t.value for t in at.text] and item.right.output in [t.value for t in at.text]
    at.text_input(key=f"reason-{item.key}").input(XSS)
    at.button(key=f"vote-left-{item.key}").click().run()
    assert not at.exception and not at.error
    with Store(dash.settings.db_url) as store:
        votes = store.votes()
    assert len(votes) == 1
    vote = votes.iloc[0]
    assert (vote["rater"], vote["winner"], vote["shown_left"], vote["key"]) == (
        "alice",
        item.shown_left,
        item.shown_left,
        item.key,
    )
    assert vote["reason"] == XSS  # stored verbatim
    revealed = at.success[0].value
    assert plain_markdown(item.left.checkpoint) in revealed and plain_markdown(item.right.checkpoint) in revealed
    assert at.session_state["rate-pair"][1].key != item.key  # the next pair
    assert any(t.startswith("alice: 1 pairwise vote and 0 scores") for t in texts(at))
    # the leaderboard shows the reason as typed, never as HTML or Markdown
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert any(t.value.endswith(f": {XSS}") for t in at.text)
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("<script" in r or "<img" in r or "](http" in r for r in rendered)


def test_rate_likert_score_and_anonymous_rater(dash):
    at = on("rate")
    at.radio(key="rate-kind").set_value("Single output: score 1 to 5").run()
    item = at.session_state["rate-likert"][1]
    assert item.generation.output in [t.value for t in at.text]
    at.radio(key=f"score-{item.key}").set_value(4)
    at.text_input(key=f"comment-{item.key}").input("fine")
    at.button(key=f"submit-{item.key}").click().run()
    with Store(dash.settings.db_url) as store:
        scores = store.likert()
    assert len(scores) == 1 and scores["score"][0] == 4 and scores["comment"][0] == "fine"
    assert scores["rater"][0].startswith("anon-") and scores["generation_id"][0] == item.generation.id
    assert plain_markdown(item.generation.checkpoint) in at.success[0].value


def test_rate_refuses_a_bad_rater_name(dash):
    at = on("rate")
    at.text_input(key="rate-name").input("<b>x</b>").run()
    assert "A rater name must be" in at.error[0].value.replace("\\", "")
    assert not at.button  # no item is offered until the name is valid


# --- Leaderboard --------------------------------------------------------------------------------------------


def _hand_case(url: str) -> None:
    """X and Y answer three prompts; X wins 3 of 4 votes; left won 2 of the 4; scores X: 4, 5 and Y: 2."""
    with Store(url) as store:
        ids = {(c, p): store.add_generation(c, p, f"{c} answers {p}", None) for c in "XY" for p in ("p1", "p2", "p3")}
        votes = [("r1", "p1", "a", "a"), ("r1", "p2", "a", "b"), ("r1", "p3", "b", "b"), ("r2", "p1", "a", "b")]
        for rater, prompt, winner, left in votes:  # a = X, b = Y
            store.add_vote(ids["X", prompt], ids["Y", prompt], winner, rater=rater, shown_left=left)
        for gen, score in ((ids["X", "p1"], 4), (ids["X", "p2"], 5), (ids["Y", "p1"], 2)):
            store.add_likert(gen, score, rater="r1")


def test_leaderboard_numbers_match_a_hand_computed_case(dash):
    dash.empty()
    _hand_case(dash.settings.db_url)
    at = on("leaderboard")
    assert [m.value for m in at.metric] == ["4", "3", "2", "50%"]  # votes, scores, raters, left won
    board = frame_with(at, "rating").set_index("model")
    # Bradley-Terry with 3 wins in 4: the MLE would put X 400 log10(3) = 190.85 above Y; the prior (1000 +- 200
    # before any vote) pulls four votes' gap in, to the posterior mode computed by hand; centred on 1000
    assert board.loc["X", "rating"] == pytest.approx(1000 + map_gap(3, 1) / 2, abs=0.1)
    assert board.loc["Y", "rating"] == pytest.approx(1000 - map_gap(3, 1) / 2, abs=0.1)
    assert (board["note"] == "too few votes").all()  # 4 votes each, under MIN_VOTES
    assert list(board["rank"]) == [1, 1] or board.loc["X", "lower"] > board.loc["Y", "upper"]
    assert (board.loc["X", ["wins", "losses", "ties", "battles"]].tolist()) == [3, 1, 0, 4]
    assert board.loc["X", "win_rate"] == 0.75 and board.loc["X", "lower"] <= board.loc["X", "rating"]
    matrix = frame_with(at, "X")
    assert matrix.loc["X", "Y"] == "0.75 (4)" and matrix.loc["Y", "X"] == "0.25 (4)"  # win rate (battles)
    assert not matrix.isna().any().any()  # no "None" cells
    rule = frame_with(at, "votes needed")  # the stopping rule: X > Y, not separated with 4 votes
    assert list(rule["neighbours"]) == ["X > Y"] and list(rule["separated"]) == ["no"]
    assert any(i.value.startswith("Not settled yet after 4 votes: 0 of 1 neighbour pairs") for i in at.info)
    assert any("X, Y have too few votes (under 10)" in i.value for i in at.info)
    assert "0.750" in shown_cells(at, "rating")  # the win rate keeps its three places beside one-place ratings
    assert any("won 2 of 4 decisive votes" in c.value for c in at.caption)
    likert = frame_with(at, "mean").set_index("model")
    assert likert.loc["X", "mean"] == 4.5 and likert.loc["Y", "mean"] == 2.0 and likert.loc["X", "n"] == 2
    assert any(c.value.startswith("1 item rated by 2 raters") for c in at.caption)
    points = chart(at, axis="Bradley-Terry rating")["data"][0]
    assert points["x"] == ["X", "Y"] and points["y"][0] == pytest.approx(board.loc["X", "rating"], abs=0.1)
    at.multiselect(key="lb-raters").set_value(["r2"]).run()
    assert [m.value for m in at.metric][:1] == ["1"]
    assert at.get("download_button")


def test_leaderboard_shows_the_owner_each_rater_and_drops_one_reversibly(dash):
    dash.empty()
    _hand_case(dash.settings.db_url)
    at = on("leaderboard")  # AppTest runs the page in this process: this machine's owner
    raters = frame_with(at, "counted").set_index("rater")
    assert raters["votes"].to_dict() == {"r1": 3, "r2": 1} and not raters["flagged"].any()
    assert raters.loc["r1", "counted"] == 3  # a name the owner typed is not capped
    at.selectbox(key="lb-drop-rater").set_value("r2").run()
    at.text_input(key="lb-drop-reason").input("testing").run()
    at.button(key="lb-drop").click().run()
    assert not at.exception and not at.error
    with Store(dash.settings.db_url) as store:
        assert store.dropped_raters() == {"r2": "testing"} and len(store.votes()) == 4  # kept in the store
    assert [m.value for m in at.metric][:3] == ["3", "3", "1"]  # r2 (one vote, no score) is not counted
    assert frame_with(at, "counted").set_index("rater").loc["r2", "dropped"]
    at.selectbox(key="lb-drop-rater").set_value("r2").run()
    at.button(key="lb-drop").click().run()  # now "Count again"
    assert [m.value for m in at.metric][:1] == ["4"]
    with Store(dash.settings.db_url) as store:
        assert store.dropped_raters() == {}


def test_leaderboard_filters_by_the_backend_that_made_the_outputs(dash):
    dash.empty()
    with Store(dash.settings.db_url) as store:
        made = {
            (ck, backend): store.add_generation(ck, "Hi?", f"{ck} via {backend}", None, stats={"backend": backend})
            for ck in ("X", "Y")
            for backend in ("llamacpp", "transformers", "")
        }
        for rater in ("r1", "r2", "r3"):  # Y wins on llama.cpp (one ballot per rater and pair)
            store.add_vote(made["X", "llamacpp"], made["Y", "llamacpp"], "b", rater=rater)
        store.add_vote(made["X", "transformers"], made["Y", "transformers"], "a", rater="r1")
        store.add_vote(made["X", "llamacpp"], made["Y", "transformers"], "tie", rater="r1")  # mixed backends
        store.add_vote(made["X", ""], made["Y", ""], "a", rater="r1")  # backend not recorded
        store.add_likert(made["X", "transformers"], 4, rater="r1")
        store.add_likert(made["Y", ""], 2, rater="r1")
    at = on("leaderboard")
    backends = at.multiselect(key="lb-backends")
    assert list(backends.options) == ["llamacpp", "transformers", "unknown"]
    assert [m.value for m in at.metric][:2] == ["6", "2"]
    backends.set_value(["llamacpp"]).run()
    assert not at.exception and [m.value for m in at.metric][:2] == ["3", "0"]
    board = frame_with(at, "rating").set_index("model")
    assert board.loc["Y", "wins"] == 3 and board.loc["X", "losses"] == 3
    at.multiselect(key="lb-backends").set_value(["llamacpp", "transformers"]).run()
    assert [m.value for m in at.metric][:2] == ["5", "1"]  # the mixed vote counts once both are chosen
    at.multiselect(key="lb-backends").set_value(["unknown"]).run()
    assert [m.value for m in at.metric][:2] == ["1", "1"]


def test_leaderboard_exports_need_the_admin_token_when_set(dash, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", "s3cret")
    at = on("leaderboard")
    assert not at.get("download_button") and any("admin token" in c.value for c in at.caption)
    at.text_input(key="lb-token").input("wrong").run()
    assert "needs the admin token" in at.error[0].value.replace("\\", "")
    at.text_input(key="lb-token").input("s3cret").run()
    assert at.get("download_button") and not at.error
    owners = "Votes per rater, and dropping a rater, are for the owner."
    assert any(c.value.startswith(owners) for c in at.caption)  # votes per rater: the token too
    at.text_input(key="lb-raters-token").input("s3cret").run()
    assert not any(c.value.startswith(owners) for c in at.caption) and not at.error


def test_leaderboard_compares_a_checkpoint_with_its_parent_and_promotes_it(dash, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ADMIN_TOKEN", "s3cret")
    at = on("leaderboard")
    at.selectbox(key="lb-verdict-checkpoint").set_value(CHECKPOINTS[2]).run()
    at.toggle(key="lb-verdict-show").set_value(True).run()
    report = next(t for t in texts(at) if "against its parent" in t)
    # its parent is the run's previous checkpoint; the suite's items give BLEU and chrF a paired interval
    assert f"`{CHECKPOINTS[2]}` against its parent `{CHECKPOINTS[1]}`" in report and "paired bootstrap" in report
    at.button(key="lb-verdict-promote").click().run()
    assert "needs the admin token" in at.error[0].value.replace("\\", "")
    at.text_input(key="lb-verdict-token").input("s3cret").run()
    at.checkbox(key="lb-verdict-force").check().run()  # two random adapters: whatever their verdict
    adapters = dash.settings.adapters_dir  # the session's: what promote writes there goes after the test
    try:
        at.button(key="lb-verdict-promote").click().run()
        assert not at.error, at.error[0].value
        assert f"New visitors now start on {CHECKPOINTS[2]}" in at.success[0].value
        assert (adapters / CHECKPOINTS[2] / "README.md").is_file()
    finally:
        (adapters / ".default.json").unlink(missing_ok=True)
        (adapters / CHECKPOINTS[2] / "README.md").unlink(missing_ok=True)


# --- Lab ----------------------------------------------------------------------------------------------------


def test_lab_sweeps_two_axes_shows_tokens_and_saves_the_setting_with_the_checkpoint(dash, monkeypatch):
    from transformers import GenerationConfig

    from workbench.generation import presets
    from workbench.studio import sweep

    monkeypatch.setenv("WORKBENCH_ADMIN_OPEN", "1")  # AppTest listens on no address; saving is an admin action
    adapter = CHECKPOINTS[1]
    at = on("lab")
    at.selectbox(key="lab-checkpoint").set_value(adapter).run()
    at.selectbox(key="lab-preset").set_value("precise").run()
    assert at.slider(key="lab-temperature").value == 0.2 and at.number_input(key="lab-top-k").value == 40
    at.selectbox(key="lab-axis-1").set_value("top_k").run()
    at.multiselect(key="lab-values-top_k").set_value([1, 50])
    at.selectbox(key="lab-axis-2").set_value("temperature").run()
    at.multiselect(key="lab-values-temperature").set_value([1.3])
    at.number_input(key="lab-samples").set_value(2)
    at.number_input(key="lab-max-new-tokens").set_value(6)
    at.button(key="lab-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, outputs, _ = at.session_state["lab-result"]
    assert len(outputs) == 4 and list(outputs["seed"]) == [0, 1, 0, 1]
    greedy = outputs[outputs["top_k"] == 1]["output"]
    assert greedy.iloc[0] == greedy.iloc[1]  # top-k 1 is greedy at any temperature and seed
    shown = frame_with(at, "distinct_2")
    assert list(shown["distinct_2"]) == pytest.approx(list(sweep.measure(outputs)["distinct_2"]), abs=1e-3)
    assert shown["mean_logprob"].notna().all()
    heat = chart(at, "distinct-2 (higher = more varied)")
    assert heat["data"][0]["type"] == "heatmap" and heat["layout"]["yaxis"]["title"]["text"] == "top-k"

    at.button(key="lab-tv-go").click().run()
    assert not at.exception and not at.error
    rows = at.session_state["lab-tokens"][-1]
    assert rows and all(0 < r["probability"] <= 1 and len(r["alternatives"]) == 5 for r in rows)
    assert any("wb-token" in h.proto.body for h in at.get("html"))
    at.number_input(key="lab-top-k").set_value(1).run()  # the same reply, read under top-k 1
    rows = at.session_state["lab-tokens"][-1]
    assert all((r["cut"] == "top-k") == (r["rank"] > 0) for r in rows)

    folder = dash.settings.adapters_dir / adapter
    try:
        at.button(key="lab-save-checkpoint").click().run()
        assert not at.error and "generation_config.json" in at.success[0].value
        config = GenerationConfig.from_pretrained(folder)
        assert (config.temperature, config.top_p, config.top_k) == (0.2, 0.9, 1)
        fresh = on("lab")
        fresh.selectbox(key="lab-checkpoint").set_value(adapter).run()  # the saved setting is its default
        assert fresh.number_input(key="lab-top-k").value == 1 and fresh.slider(key="lab-temperature").value == 0.2
    finally:
        (folder / presets.GENERATION_CONFIG).unlink(missing_ok=True)

    at.button(key="lab-nt-go").click().run()
    bars = chart(at, "Next-token probabilities")["data"][0]
    messages = [{"role": "user", "content": "Write one sentence about the sea."}]
    direct = dash.engine.next_token_probabilities(messages, adapter, k=10, temperature=0.2)
    assert bars["x"] == pytest.approx([p for _, _, p in direct], rel=1e-4)


def test_lab_shows_what_a_checkpoint_changed_on_a_reply_and_over_a_suite(dash):
    from workbench.studio.tokenshift import moved_most, suite_prompts

    adapter = CHECKPOINTS[2]
    at = on("lab")
    at.selectbox(key="lab-checkpoint").set_value(adapter).run()
    assert adapter not in at.selectbox(key="lab-shift-against").options
    at.selectbox(key="lab-shift-against").set_value("base").run()
    at.number_input(key="lab-max-new-tokens").set_value(8).run()
    at.button(key="lab-shift-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shifted = at.session_state["lab-shift"]
    rows = shifted[3]
    assert shifted[:2] == ("base", adapter) and 0 < len(rows) <= 9
    assert all(0 < r["before"] <= 1 and 0 < r["after"] <= 1 for r in rows)
    assert any("wb-shift" in h.proto.body and f"more likely under {adapter}" in h.proto.body for h in at.get("html"))
    at.number_input(key="lab-shift-limit").set_value(2)
    at.number_input(key="lab-shift-min-count").set_value(1)
    at.button(key="lab-shift-suite-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    before, after, suite, replies, readings = at.session_state["lab-shift-result"]
    assert (before, after, suite, replies, len(readings)) == ("base", adapter, "identity_heldout", "references", 2)
    references = [refs[0] for _, refs in suite_prompts("identity_heldout", 2)]
    assert ["".join(r["token"] for r in rows) for rows in readings] == references
    expected = moved_most(readings, top=20, min_count=1)
    bars = chart(at, f"Tokens that moved most from base to {adapter}")["data"][0]
    assert bars["x"] == pytest.approx(list(expected["mean_shift"]), abs=1e-4)
    assert list(frame_with(at, "mean_shift")["count"]) == list(expected["count"])


def test_a_fresh_install_compares_the_base_model_under_two_settings_and_makes_pairs_to_rate(
    dash, monkeypatch, tmp_path
):
    from workbench.generation import presets
    from workbench.studio import compare

    dash.empty()
    monkeypatch.setenv("WORKBENCH_ADAPTERS_DIR", str(tmp_path / "no-adapters"))  # only the base model
    at = on("compare")
    assert "Only the base model is here" in at.info[0].value
    assert at.selectbox(key="cmp-preset").value == presets.DEFAULT_PRESET
    assert at.slider(key="cmp-temperature").value == presets.SHIPPED[presets.DEFAULT_PRESET].temperature
    assert at.selectbox(key="cmp-b-preset").value == "creative" and at.slider(key="cmp-b-temperature").value == 1.1
    at.text_area(key="cmp-prompt").input("What is the capital of France?")
    for prefix in ("cmp", "cmp-b"):
        at.number_input(key=f"{prefix}-max-new-tokens").set_value(6)
    at.button(key="cmp-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = compare_columns(at)
    assert [h for h, _, _ in shown] == ["base", "base"] and all(c.startswith("Generated now") for _, c, _ in shown)
    labels = [c.value for c in at.caption if c.value.startswith("temp ")]
    assert len(labels) == 2 and labels[0] != labels[1]  # each column says its settings

    # Rate: no checkpoint pairs with one model, so it offers to make (settings) pairs, and then serves one
    monkeypatch.setattr(compare, "PAIR_PROMPTS", 1)
    monkeypatch.setattr(compare, "PAIR_TOKENS", 6)
    at.switch_page("pages/rate.py").run()
    assert [i.value for i in at.info] == ["There are no pairs to rate yet."]
    assert any("Only the base model is here" in c.value for c in at.caption)
    at.button(key="rate-make-checkpoint").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.radio(key="rate-kind").value == "Pairwise: same checkpoint, two generation settings"
    assert [b.label for b in at.button if b.key.startswith("vote-")][:2] == ["A is better", "B is better"]
    with Store(dash.settings.db_url) as store:
        first = store.prompts(compare.PAIR_SET)[0]["text"]
        assert (store.generations()["prompt"] == first).sum() == 2  # the base model under both settings


def test_compare_preset_fills_the_generation_settings(dash):
    at = on("compare")
    at.selectbox(key="cmp-preset").set_value("creative").run()
    assert not at.exception
    assert (at.slider(key="cmp-temperature").value, at.slider(key="cmp-top-p").value) == (1.1, 0.98)
    assert at.number_input(key="cmp-top-k").value == 0 and at.slider(key="cmp-repetition-penalty").value == 1.05


# --- the prompts command ------------------------------------------------------------------------------------


def test_prompts_cli_loads_the_shipped_sets_once(dash, capsys):
    from workbench.cli import main

    dash.empty()
    assert main(["prompts", "--load", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["added"] == ["vicuna-bench", "mt-bench"]
    assert {s["name"]: s["size"] for s in first["prompt_sets"]} == {"mt-bench": 80, "vicuna-bench": 80}
    assert main(["prompts", "--load", "--show", "mt-bench", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["added"] == [] and second["prompts"][0]["metadata"]["category"] == "writing"
    assert len(second["prompts"][0]["metadata"]["later_turns"]) == 1
