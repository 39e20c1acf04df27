"""Faults a public Space meets, survived: the app killed with SIGKILL while visitors vote, and its PostgreSQL
store going away mid-run.

- kill -9: twelve voters vote through gradio_client while the app is killed; every vote the app acknowledged
  is in the store, and the app starts again on the same store.
- PostgreSQL stopped: a vote gets one clear sentence (nothing recorded), the chat keeps answering, and voting
  works again once the database is back, without restarting the app.
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import pytest
from gradio_client import Client

from tests.fixtures.arena import shown_prompt
from tests.fixtures.postgres import create_database
from tests.fixtures.servers import ROOT, free_port, public_app_env, server_process
from workbench.access import voter_id, voter_secret
from workbench.store import Store

pytestmark = pytest.mark.slow

VOTERS = 12


def seed(db_url: str, prompts: int) -> None:
    with Store(db_url) as store:
        for i in range(prompts):
            for checkpoint in ("base", "rival"):
                store.add_generation(checkpoint, f"Question {i}?", f"{checkpoint} answers {i}", None)


def voter_name(address: str, store_folder) -> str:
    """The anonymous rater name the app gives a visitor at `address` (see workbench/ui/arena.py): keyed with the
    secret the app keeps beside its SQLite store."""
    from workbench.store.records import anonymous_rater

    return anonymous_rater(voter_id(address, voter_secret(store_folder)))


def start_app(env: dict[str, str]):
    port = int(env["GRADIO_SERVER_PORT"])
    return server_process([sys.executable, str(ROOT / "app.py")], f"http://127.0.0.1:{port}/", env, "faults_app.log")


def vote_until_killed(
    url: str, address: str, acknowledged: list[str], stop: threading.Event, refusals: list[str]
) -> None:
    """One visitor voting as fast as the app answers; each acknowledged vote's prompt goes to `acknowledged`,
    anything else the app answered before the kill to `refusals` (the test shows them if the voters stall)."""
    try:
        client = Client(url, verbose=False, headers={"X-Forwarded-For": address})
        while not stop.is_set():
            prompt = shown_prompt(client.predict("", api_name="/arena_next")[0])
            if not prompt:
                refusals.append(f"{address}: no pair shown")
                return
            answer = client.predict("", "", api_name="/vote_left")
            if "Recorded" in answer:
                acknowledged.append(prompt)
            else:
                refusals.append(f"{address}: {answer}")
    except Exception as exc:  # the app died under us: what was acknowledged before counts
        if not stop.is_set():
            refusals.append(f"{address}: {type(exc).__name__}: {exc}")
        return


def test_kill_9_while_visitors_vote_loses_no_acknowledged_vote(wb_env, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    seed(db_url, prompts=40)
    # Its own adapters folder: the session's adapters would be new checkpoints the sampler places first, by
    # generating their answers live, and this test is about votes, not generation.
    adapters = str(tmp_path / "adapters")
    env = public_app_env(wb_env, free_port(), db_url, vote_limit="0", adapters_dir=adapters)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    acknowledged = {f"10.9.0.{n}": [] for n in range(VOTERS)}
    refusals: list[str] = []
    stop = threading.Event()
    with start_app(env) as proc:
        threads = [
            threading.Thread(target=vote_until_killed, args=(url, address, acks, stop, refusals), daemon=True)
            for address, acks in acknowledged.items()
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while sum(map(len, acknowledged.values())) < 60 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)  # mid-vote: no shutdown, no flush
        proc.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    total = sum(map(len, acknowledged.values()))
    assert total >= 60, f"the voters did not get going before the kill ({total} votes): {refusals[:5]}"
    with Store(db_url) as store:
        votes = store.votes()
    assert not votes.duplicated(["rater", "generation_a_id", "generation_b_id"]).any()
    for address, acks in acknowledged.items():
        stored = set(votes.loc[votes["rater"] == voter_name(address, tmp_path), "prompt"])
        assert set(acks) <= stored  # every acknowledged vote survived the kill
        assert len(stored) - len(acks) in (0, 1)  # at most the one in flight was stored unacknowledged
    with start_app(env):  # the app starts again on the store it was killed over
        assert shown_prompt(Client(url, verbose=False).predict("", api_name="/arena_next")[0])
    with Store(db_url) as store:
        assert len(store.votes()) == len(votes)


@pytest.mark.postgres
def test_a_database_outage_is_one_sentence_and_the_chat_goes_on(wb_env, postgres_server):
    db_url = create_database(postgres_server, "wb_outage")
    seed(db_url, prompts=6)
    env = public_app_env(wb_env, free_port(), db_url)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    with start_app(env):
        client = Client(url, verbose=False, headers={"X-Forwarded-For": "10.8.0.1"})
        client.predict("", api_name="/arena_next")
        assert "Recorded" in client.predict("", "", api_name="/vote_left")
        client.predict("", api_name="/arena_next")
        postgres_server.crash()
        try:
            refused = client.predict("", "", api_name="/vote_left")  # said in the status under the buttons
            assert "database did not answer, so nothing was recorded" in refused
            history, stats = client.predict("Say hi.", max_new_tokens=8, temperature=0.0, api_name="/chat")
            assert history[-1]["role"] == "assistant" and "tokens" in stats  # the chat does not need the store
        finally:
            postgres_server.restart()
        # The same pair is still on the page: pressing the button again records it once the database is back.
        assert "Recorded" in client.predict("", "", api_name="/vote_left")
        client.close()
    with Store(db_url) as store:
        assert len(store.votes()) == 2
