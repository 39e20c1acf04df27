"""How often one visitor may generate or vote: sliding windows keyed by the visitor's address key.

Rates are counted per client address as our own proxy saw it (`workbench.access.client_address`), never by
anything the client chooses (Gradio's session hash, a voter id derived from a sign-in), and the same way in the app,
the dashboard and the HTTP API. The owner is never counted (`Visitor.owner`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from workbench.config import Settings
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.gate.visitor import Visitor


class RateLimit:
    """At most `count` events per `period_s` seconds per key (a sliding window); count 0 means no limit."""

    MAX_KEYS = 50_000  # keys remembered at once, so a flood of addresses cannot exhaust memory

    def __init__(self, count: int, period_s: float, what: str) -> None:
        self.count = count
        self.period_s = period_s
        self.what = what
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def take(self, key: str, n: int = 1) -> None:
        """Count `n` events for `key` (all or none: a sweep of 16 generations takes 16), or raise WorkbenchError
        saying when it may try again."""
        if self.count <= 0 or n <= 0:
            return
        if n > self.count:
            raise WorkbenchError(f"That asks for {n} {self.what}; the limit here is {self.count} per {self._period()}.")
        now = time.monotonic()
        with self._lock:
            times = self._seen.setdefault(key, deque())
            while times and now - times[0] > self.period_s:
                times.popleft()
            if len(times) + n > self.count:
                wait = int(self.period_s - (now - times[len(times) + n - self.count - 1])) + 1
                left = self.count - len(times)
                raise WorkbenchError(
                    f"You have reached the limit of {self.count} {self.what} per {self._period()}: "
                    f"try again in {wait} seconds."
                    if n == 1 or not left
                    else f"That asks for {n} {self.what} and you have {left} left this {self._period()}: "
                    f"ask for fewer, or try again in {wait} seconds."
                )
            times.extend([now] * n)
            if len(self._seen) > self.MAX_KEYS:
                self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] <= self.period_s}

    def _period(self) -> str:
        return {60: "minute", 3600: "hour"}.get(int(self.period_s), f"{self.period_s:g} seconds")


def reply_limit(settings: Settings) -> RateLimit:
    """Replies a visitor may ask for per minute (the owner is not counted: see `Settings.is_owner`)."""
    return RateLimit(settings.rate_limit, 60.0, "replies")


def vote_limit(settings: Settings) -> RateLimit:
    """Votes a visitor may cast per hour (the owner is not counted)."""
    return RateLimit(settings.vote_limit, 3600.0, "votes")


class Limits:
    """The rate limits of one server process: replies per minute and votes per hour, each per visitor address.
    The owner is never counted. One per process and per pair of settings (`limits_for`), so the Gradio app and
    the HTTP API mounted on it count the same visitor once."""

    def __init__(self, settings: Settings) -> None:
        self.replies = reply_limit(settings)
        self.votes = vote_limit(settings)

    def take_reply(self, who: Visitor, n: int = 1) -> None:
        """Count `n` generations for `who` (all or none); raises WorkbenchError past the limit."""
        if not who.owner:
            self.replies.take(who.address, n)

    def take_vote(self, who: Visitor) -> None:
        """Count one vote for `who`; raises WorkbenchError past the limit."""
        if not who.owner:
            self.votes.take(who.address)


_LIMITS: dict[tuple[int, int], Limits] = {}
_LIMITS_LOCK = threading.Lock()


def limits_for(settings: Settings) -> Limits:
    """The process's `Limits` for these settings' rate and vote limits (made on first use)."""
    key = (settings.rate_limit, settings.vote_limit)
    with _LIMITS_LOCK:
        if key not in _LIMITS:
            _LIMITS[key] = Limits(settings)
        return _LIMITS[key]
