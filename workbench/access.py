"""Who may do what: the admin check shared by the Gradio app, the dashboard, the store and the CLI.

Three roles. A visitor chats and votes; a rater does the same under a name; an admin trains, cancels,
resumes, uploads datasets, exports, imports and deletes. Admin actions are closed by default:

    WORKBENCH_ADMIN_TOKEN set        every admin action needs that token (in the UI, the API and the CLI)
    no token, listening on loopback  open (a laptop: only this machine can reach the app)
    no token, listening publicly     closed, unless the operator opts out with WORKBENCH_ADMIN_OPEN=1

Wrong tokens are throttled per client address, so a token cannot be guessed at full speed.
`client_address` finds that address behind a reverse proxy (a Hugging Face Space has one) from the
proxy's own X-Forwarded-For entry, never from anything the client chose.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from collections import deque
from collections.abc import Mapping

from workbench.errors import WorkbenchError

LOCAL = "local"  # who a caller is when it is this machine's shell (the CLI)
FAILURE_WINDOW_S = 300.0
MAX_FAILURES = 5  # wrong tokens per client address per window
MAX_FAILURES_ALL = 50  # wrong tokens from everyone per window: guessing spread over many addresses


def is_loopback(host: str | None) -> bool:
    """Whether a server bound to `host` is reachable only from this machine."""
    name = (host or "").strip().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def client_address(peer: str | None, headers: Mapping[str, str] | None, trusted_proxies: int) -> str:
    """The address of the client behind `trusted_proxies` reverse proxies.

    Each proxy appends the address it saw to X-Forwarded-For, so the entry `trusted_proxies` places from the
    right was written by our outermost proxy; anything left of it is the client's own claim and is ignored.
    """
    if trusted_proxies > 0 and headers:
        forwarded = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return peer or "unknown"


def voter_id(address: str) -> str:
    """The id an anonymous visitor's ballots count under: a digest of their address (see `client_address`),
    the same in the app and the dashboard, and never the address itself."""
    return hashlib.sha256(f"workbench-voter:{address}".encode()).hexdigest()[:32]


class _Failures:
    """Recent wrong-token attempts, per client address and in all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_client: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    @staticmethod
    def _trim(times: deque[float], now: float) -> None:
        while times and now - times[0] > FAILURE_WINDOW_S:
            times.popleft()

    def wait_s(self, who: str) -> float:
        """Seconds until `who` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            mine = self._by_client.get(who, deque())
            self._trim(mine, now)
            self._trim(self._all, now)
            if len(mine) >= MAX_FAILURES:
                return FAILURE_WINDOW_S - (now - mine[0])
            if len(self._all) >= MAX_FAILURES_ALL:
                return FAILURE_WINDOW_S - (now - self._all[0])
            return 0.0

    def add(self, who: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._by_client.setdefault(who, deque()).append(now)
            self._all.append(now)
            if len(self._by_client) > 10_000:  # bounded memory under a flood of addresses
                self._by_client = {k: v for k, v in self._by_client.items() if v and now - v[-1] < FAILURE_WINDOW_S}


_FAILURES = _Failures()


def check_admin(expected: str | None, open_without_token: bool, token: str | None, who: str = LOCAL) -> None:
    """Raise WorkbenchError unless an admin action may go ahead.

    Args:
        expected: The configured admin token, or None.
        open_without_token: Whether admin actions are open when no token is configured (loopback or opt-out).
        token: The token the caller gave.
        who: The caller's address, for throttling wrong tokens.
    """
    if expected is None:
        if open_without_token:
            return
        raise WorkbenchError(
            "Admin actions are closed on this public server: set WORKBENCH_ADMIN_TOKEN and give that token, "
            "run the app on 127.0.0.1, or set WORKBENCH_ADMIN_OPEN=1 to open them to everyone."
        )
    remote = who != LOCAL  # this machine's own shell could read the token anyway: only remote guesses count
    wait = _FAILURES.wait_s(who) if remote else 0.0
    if wait > 0:
        raise WorkbenchError(f"Too many wrong admin tokens: try again in {int(wait) + 1} seconds.")
    if not token or not hmac.compare_digest(str(token).encode(), expected.encode()):
        if remote:
            _FAILURES.add(who)
        raise WorkbenchError("This action needs the admin token (WORKBENCH_ADMIN_TOKEN is set on this server).")


def admin_allowed(expected: str | None, open_without_token: bool, token: str | None, who: str = LOCAL) -> bool:
    """Whether `check_admin` would pass, for deciding what a page shows (a wrong token here is not counted)."""
    if expected is None:
        return open_without_token
    return bool(token) and hmac.compare_digest(str(token).encode(), expected.encode())
