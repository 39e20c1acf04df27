"""The app as a public Space under load for a minute: twenty visitors chatting and fifty voting at once
(`workbench.bench.load`, the same run the `public_load` benchmark case reports). Every request is served or
refused with a sentence, the app's memory stays bounded, and the store holds exactly the acknowledged votes,
none doubled. The figures are written to tests/artifacts/public_load.txt.
"""

from __future__ import annotations

import sys

import pytest

from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.bench.load import run_load, seed_pairs
from workbench.store import Store

pytestmark = pytest.mark.slow

MEMORY_BOUND_MB = 4096  # the embedded model, llama.cpp's slots and Gradio take about 1 GB; a leak would pass this


def test_a_minute_of_twenty_chatters_and_fifty_voters(wb_env, tmp_path, artifacts):
    db_url = f"sqlite:///{tmp_path / 'load.db'}"
    seed_pairs(db_url)
    env = public_app_env(wb_env, free_port(), db_url)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    with server_process([sys.executable, str(ROOT / "app.py")], url, env, "load_app.log") as proc:
        report = run_load(url, proc.pid, duration_s=60, chatters=20, voters=50)
    (artifacts / "public_load.txt").write_text(report.summary() + "\n")
    assert not report.failures, report.failures  # every request got an answer or a clear refusal
    assert report.outcomes["chat", "served"] > 0 and report.outcomes["vote", "served"] > 0, report.summary()
    assert 0 < report.peak_rss_mb < MEMORY_BOUND_MB
    with Store(db_url) as store:
        votes = store.votes()
    assert len(votes) == len(report.acknowledged)  # none lost, none doubled
    assert not votes.duplicated(["rater", "generation_a_id", "generation_b_id"]).any()
