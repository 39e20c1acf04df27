"""A public Space under load: many visitors chatting and voting at once through the running app.

`run_load(url, ...)` drives an app that runs as a Space does (admin closed, one trusted proxy, so each
simulated visitor has an address of their own): `chatters` gradio_client sessions send short chats and
`voters` sessions take Arena pairs and vote, all for `duration_s`. Every request ends as served, refused
with a sentence (a rate limit, a full queue) or failed; the report counts them, gives latencies and the
app's peak memory, and says which votes were acknowledged, so the caller can compare them with the store.

The `public_load` benchmark case (`python -m workbench bench --case public_load`) runs it for a minute
against `python app.py` on the embedded model; tests/e2e/test_load.py checks the same guarantees on a short run.

What its figures measure: that the app stays correct under a crowd (served or refused, never failed; every
acknowledged vote stored once; memory bounded), not how fast it serves. Its seventy gradio_client sessions each
run threads on the same cores as the app, so its latencies are mostly the load generator's own; the app's
serving speed against bare llama.cpp is the `serving_capacity` case (`workbench.bench.capacity`), measured with
a light client.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REFUSALS = ("limit of", "queue", "busy", "try again")  # what a clear refusal says


@dataclass
class LoadReport:
    """What happened to every request of a load run."""

    duration_s: float = 0.0
    outcomes: Counter = field(default_factory=Counter)  # (kind, "served" | "refused" | "failed") -> count
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"chat": [], "vote": []})
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (visitor address, prompt) per vote
    failures: list[str] = field(default_factory=list)  # the first few unexpected errors, for the report
    peak_rss_mb: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, outcome: str, seconds: float, error: str = "") -> None:
        with self._lock:
            self.outcomes[kind, outcome] += 1
            if outcome == "served":
                self.latencies[kind].append(seconds)
            if outcome == "failed" and len(self.failures) < 10:
                self.failures.append(f"{kind}: {error[:200]}")

    def percentile(self, kind: str, q: float) -> float:
        """The q-quantile (0..1) of served requests' latency, in seconds (0 when none was served)."""
        values = sorted(self.latencies[kind])
        if not values:
            return 0.0
        return values[min(len(values) - 1, int(q * len(values)))]

    def summary(self) -> str:
        parts = [f"{k} {o}: {n}" for (k, o), n in sorted(self.outcomes.items())]
        for kind in self.latencies:
            if self.latencies[kind]:
                p50, p95 = self.percentile(kind, 0.5), self.percentile(kind, 0.95)
                parts.append(f"{kind} p50 {p50:.2f} s, p95 {p95:.2f} s")
        return "; ".join(parts) + f"; peak app memory {self.peak_rss_mb:.0f} MB"


def _outcome(error: BaseException) -> str:
    text = str(error).lower()
    return "refused" if any(word in text for word in REFUSALS) else "failed"


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB; 0 where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _chatter(url: str, address: str, until: float, report: LoadReport, tokens: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, headers={"X-Forwarded-For": address})
    n = 0
    while time.monotonic() < until:
        n += 1
        started = time.perf_counter()
        try:
            client.predict(f"Give me one word, please ({n}).", max_new_tokens=tokens, temperature=0.7, api_name="/chat")
            report.record("chat", "served", time.perf_counter() - started)
        except Exception as exc:  # a refusal or a failure: both are counted
            report.record("chat", _outcome(exc), 0.0, str(exc))
            time.sleep(1.0)  # a refused visitor waits a moment before trying again
    client.close()


def _voter(url: str, address: str, until: float, report: LoadReport) -> None:
    from gradio_client import Client

    from workbench.generation.settings import message_text

    client = Client(url, verbose=False, headers={"X-Forwarded-For": address})
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            left, _, status, _ = client.predict("", api_name="/arena_next")
            if not left:
                if "No pair is left" in status or "no more votes are needed" in status:
                    break  # this visitor has judged every pair, or the ranking is settled (ratings/pairs.arena_note)
                raise RuntimeError(status)  # a refusal, in the status's words
            prompt = message_text(left[0]["content"])
            receipt = client.predict("", "", api_name="/vote_left")
            if "Recorded" not in receipt:
                raise RuntimeError(receipt)
            report.record("vote", "served", time.perf_counter() - started)
            with report._lock:
                report.acknowledged.append((address, prompt))
        except Exception as exc:
            report.record("vote", _outcome(exc), 0.0, str(exc))
            time.sleep(1.0)
    client.close()


def run_load(
    url: str, app_pid: int, *, duration_s: float = 60.0, chatters: int = 20, voters: int = 50, tokens: int = 16
) -> LoadReport:
    """Drive the app at `url` (process `app_pid`, for its memory) with chatters and voters for `duration_s`.

    Visitors are told apart by the X-Forwarded-For entry a Space's proxy adds, so the app must trust one proxy
    (WORKBENCH_TRUSTED_PROXIES=1); chat visitors are 10.1.x.x, voters 10.2.x.x.
    """
    report = LoadReport()
    until = time.monotonic() + duration_s
    threads = [
        threading.Thread(target=_chatter, args=(url, f"10.1.0.{i}", until, report, tokens), daemon=True)
        for i in range(chatters)
    ] + [threading.Thread(target=_voter, args=(url, f"10.2.0.{i}", until, report), daemon=True) for i in range(voters)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        report.peak_rss_mb = max(report.peak_rss_mb, _peak_rss_mb(app_pid))
        time.sleep(0.5)
    report.duration_s = time.perf_counter() - started
    report.peak_rss_mb = max(report.peak_rss_mb, _peak_rss_mb(app_pid))
    return report


def served_per_s(report: LoadReport, kind: str) -> float:
    """Served requests of `kind` per second of the run."""
    return report.outcomes[kind, "served"] / report.duration_s if report.duration_s else 0.0


def seed_pairs(db_url: str, prompts: int = 300) -> None:
    """Store two checkpoints' answers to `prompts` prompts, so voters are served stored pairs (not new ones)."""
    from workbench.store import Store

    with Store(db_url) as store:
        for i in range(prompts):
            for checkpoint in ("base", "rival"):
                store.add_generation(checkpoint, f"Load question {i}?", f"{checkpoint} answers question {i}.", None)


def case_public_load(ctx, duration_s: float = 60.0) -> list:
    """Twenty visitors chatting and fifty voting for a minute through `python app.py` run as a public Space.
    Reported, not targeted: requests served, refusals (rate limits, the queue bound), p50/p95 latency, the
    app's peak memory, and whether the store holds exactly the acknowledged votes. The latencies include the
    load generator's own threads (70 gradio_client sessions on the app's cores): they say the app holds up under
    a crowd, not what one visitor waits (that is `serving_capacity`)."""
    import dataclasses
    import tempfile

    from workbench.bench import Measure
    from workbench.bench.serving import _app
    from workbench.store import Store

    with tempfile.TemporaryDirectory() as folder:
        db_url = f"sqlite:///{folder}/load.db"
        seed_pairs(db_url)
        public = dataclasses.replace(ctx.settings, db_url=db_url, admin_open="0", trusted_proxies=1)
        with _app(public, "llamacpp") as app:
            report = run_load(app.url, app.pid, duration_s=duration_s)
        with Store(db_url) as store:
            stored = len(store.votes())
    exact = "exactly the acknowledged votes" if stored == len(report.acknowledged) else f"{stored} votes stored"
    rate = {kind: served_per_s(report, kind) for kind in ("chat", "vote")}
    measures = [
        Measure("public_load", f"{kind}: served per second", rate[kind], "req/s", note=_counts(report, kind))
        for kind in rate
    ]
    generator = "includes the load generator's own CPU (70 gradio_client sessions); see serving_capacity"
    for kind in ("chat", "vote"):
        for q in (0.5, 0.95):
            value = report.percentile(kind, q)
            measures.append(Measure("public_load", f"{kind}: p{int(q * 100)} latency", value, "s", note=generator))
    measures.append(Measure("public_load", "app peak memory", report.peak_rss_mb, "MB", note=f"store holds {exact}"))
    return measures


def _counts(report: LoadReport, kind: str) -> str:
    served, refused, failed = (report.outcomes[kind, o] for o in ("served", "refused", "failed"))
    return f"{served} served, {refused} refused, {failed} failed in {report.duration_s:.0f} s"
