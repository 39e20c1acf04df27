"""The app as a public Space with visitors chatting and voting at once, briefly (`workbench.bench.load`): every
request is served or refused with a sentence, the app's memory stays bounded, and the store holds exactly the
acknowledged votes, none doubled. A correctness check, not a load test: the minute of twenty chatters and fifty
voters is the `public_load` benchmark case, and serving speed is `serving_capacity`'s. The figures are written
to tests/artifacts/public_load.txt.
"""

from __future__ import annotations

import sys

import pytest

from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.bench.load import run_load, seed_pairs
from workbench.store import Store

pytestmark = pytest.mark.slow

MEMORY_BOUND_MB = 4096  # the embedded model, llama.cpp's slots and Gradio take about 1 GB; a leak would pass this


def test_chatters_and_voters_at_once_lose_no_vote(wb_env, tmp_path, artifacts):
    db_url = f"sqlite:///{tmp_path / 'load.db'}"
    seed_pairs(db_url)
    env = public_app_env(wb_env, free_port(), db_url)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "load_app.log") as proc:
        report = run_load(url, proc.pid, duration_s=6, chatters=4, voters=12)
    (artifacts / "public_load.txt").write_text(report.summary() + "\n")
    assert not report.failures, report.failures  # every request got an answer or a clear refusal
    assert report.outcomes["chat", "served"] > 0 and report.outcomes["vote", "served"] > 0, report.summary()
    assert 0 < report.peak_rss_mb < MEMORY_BOUND_MB
    with Store(db_url) as store:
        votes = store.votes()
    assert len(votes) == len(report.acknowledged)  # none lost, none doubled
    assert not votes.duplicated(["rater", "generation_a_id", "generation_b_id"]).any()
