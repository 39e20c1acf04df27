"""Who may do what: the admin check shared by the Gradio app, the dashboard, the store and the CLI.

Three roles. A visitor chats and votes; a rater does the same under a name; an admin trains, cancels,
resumes, uploads datasets, exports, imports and deletes. Admin actions are closed by default:

    WORKBENCH_ADMIN_TOKEN set          every admin action needs that token (in the UI, the API and the CLI)
    no token, auto, this machine       open to a caller that really is this machine (see `is_local_request`)
    no token, anyone else              closed, unless the operator opts out with WORKBENCH_ADMIN_OPEN=1

"Really this machine" is decided per request, never by where the server listens alone: the app listens on
loopback and is not shared (GRADIO_SHARE), the connection comes from loopback, no proxy header is present (an
nginx on the same host forwards the internet from loopback), and the Host and Origin headers name loopback (a
DNS-rebinding page sends its own host name). The owner on their laptop passes all four; nothing from outside does.

Every check of the admin token goes through one throttle (`check_admin`): at most MAX_FAILURES distinct wrong
tokens per client address per FAILURE_WINDOW_S, after which that address is refused even the right token until
the window passes; once MAX_FAILURES_ALL wrong tokens came from everyone in the window, an address that already
failed once is refused, while an address with no failure is still checked, so a flood from many addresses slows
guessing to one try per address per window and never refuses the right token from the owner's clean address.
The same wrong token sent again (a page's timer re-sends the box's value) is not a new guess. A wrong token gets
the same sentence wherever it is asked.

`client_address` finds the visitor's address behind a reverse proxy (a Hugging Face Space has one) from the
proxy's own X-Forwarded-For entry, never from anything the client chose; IPv6 addresses count per /64 (what one
subscriber is given). `voter_id` turns it into the id anonymous ballots count under: a keyed HMAC whose secret
lives beside the store and is never shown, so the id cannot be matched to an address without it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import WorkbenchError

LOCAL = "local"  # the address key of this machine's own shell (the CLI); no header can produce it
FAILURE_WINDOW_S = 300.0
MAX_FAILURES = 5  # distinct wrong tokens per client address per window
MAX_FAILURES_ALL = 50  # wrong tokens from everyone per window: then one try per address
PROVEN_S = 3600.0  # an address that gave the right token counts as the admin's for this long (uploads)
# Headers a reverse proxy adds: a request carrying one came through a proxy, so it is not this machine's own.
PROXY_HEADERS = (
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-server",
    "via",
    "x-client-ip",
    "cf-connecting-ip",
    "true-client-ip",
    "fly-client-ip",
)
NEEDS_TOKEN = "This action needs the admin token (WORKBENCH_ADMIN_TOKEN is set on this server)."
CLOSED = (
    "Admin actions are closed on this server for callers from elsewhere: set WORKBENCH_ADMIN_TOKEN and give that "
    "token, use the app from the machine it runs on (127.0.0.1, not shared, no proxy), or set WORKBENCH_ADMIN_OPEN=1 "
    "to open them to everyone."
)


# --- addresses ---------------------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an address or host name, with or without brackets) names only this machine."""
    name = (host or "").strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str:
    """The host of a Host header value, without its port ("[::1]:7860" -> "::1", "a.b:80" -> "a.b")."""
    value = (header or "").strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def header_values(headers: Any, name: str) -> list[str]:
    """Every value of header `name` (a request may repeat a header line; all of them count): from Starlette's
    Headers (`getlist`), Streamlit's (`get_all`), a mapping or (name, value) pairs."""
    if headers is None:
        return []
    low = name.lower()
    for method in ("getlist", "get_all"):
        if callable(getattr(headers, method, None)):
            return [str(v) for v in getattr(headers, method)(name)]
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [str(v) for k, v in items if str(k).lower() == low]


def address_key(text: str | None) -> str | None:
    """The key an address counts under: an IPv4 address as is, an IPv6 address as its /64 network (an
    IPv4-mapped one as its IPv4 address); None when `text` is not an IP address."""
    try:
        ip = ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(peer: str | None, headers: Any, trusted_proxies: int) -> str:
    """The address key of the client behind `trusted_proxies` reverse proxies (see `address_key`).

    Each proxy appends the address it saw to X-Forwarded-For (every header line counts, in order), so the entry
    `trusted_proxies` places from the right was written by our outermost proxy; anything left of it is the
    client's own claim and is ignored. An entry that is not an address (the proxy did not write it) falls back to
    the peer. Never returns LOCAL.
    """
    if trusted_proxies > 0:
        hops = [h.strip() for line in header_values(headers, "x-forwarded-for") for h in line.split(",") if h.strip()]
        if len(hops) >= trusted_proxies and (key := address_key(hops[-trusted_proxies])):
            return key
    return address_key(peer) or "unknown"


def is_local_request(peer: str | None, headers: Any, *, trusted_proxies: int, shared: bool) -> bool:
    """Whether a request really comes from this machine (see the module docstring): never when the app is shared
    or sits behind proxies; else a loopback peer, no proxy header, and loopback Host and Origin."""
    if shared or trusted_proxies > 0 or not is_loopback(peer):
        return False
    if any(header_values(headers, name) for name in PROXY_HEADERS):
        return False
    hosts = header_values(headers, "host")
    if len(hosts) != 1 or not is_loopback(host_name(hosts[0])):
        return False
    # "Origin: null" is what a sandboxed iframe, a file:// page or a redirect across origins sends: a page of
    # unknown origin, never this machine's own, so it is a visitor (it could otherwise start a run on a laptop app).
    return all(is_loopback(urlsplit(origin.strip()).hostname) for origin in header_values(headers, "origin"))


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the address key its limits count under, and whether it is really this machine.

    Attributes:
        address: The client's address key (`client_address`), or LOCAL for this machine's shell.
        local: True only for this machine's own requests (`is_local_request`) and its shell.
    """

    address: str
    local: bool


SHELL = Caller(LOCAL, True)  # the CLI, scripts and in-process calls


def caller(peer: str | None, headers: Any, *, trusted_proxies: int, shared: bool) -> Caller:
    """The Caller of an HTTP request from its peer address and headers."""
    return Caller(
        client_address(peer, headers, trusted_proxies),
        is_local_request(peer, headers, trusted_proxies=trusted_proxies, shared=shared),
    )


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    """Whether a Host header value is one this server answers to: a name in `allowed`, "*" for any, or a
    "*.domain" pattern (a DNS-rebinding page sends its own name, which is in no such list)."""
    name = host_name(host)
    for pattern in allowed:
        if pattern == "*" or pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


# --- voter ids ---------------------------------------------------------------------------------------------

_SECRETS: dict[Path, bytes] = {}
_SECRETS_LOCK = threading.Lock()
SECRET_FILE = "voter-id.key"


def voter_secret(folder: Path, key: str | None = None) -> bytes:
    """The secret voter ids are keyed with: `key` when given (WORKBENCH_VOTER_KEY, a Space secret, so ids stay the
    same after a restart that loses `folder`), else 64 random hex digits in `folder`/voter-id.key (mode 0600), made
    on first use. The file is written to a temporary file and linked into place, so a crash leaves no half-written
    secret and two processes racing to make it both read the one that won."""
    if key:
        return key.encode()
    path = Path(folder) / SECRET_FILE
    with _SECRETS_LOCK:
        if path not in _SECRETS:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.tmp")
                tmp.unlink(missing_ok=True)  # left by a crashed process that had our pid
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink()
            text = path.read_text(encoding="ascii").strip()
            if len(text) < 32:
                raise WorkbenchError(f"The voter-id secret {SECRET_FILE} beside the store is damaged: delete it.")
            _SECRETS[path] = text.encode()
        return _SECRETS[path]


def voter_id(address: str, secret: bytes) -> str:
    """The id an anonymous visitor's ballots count under: HMAC-SHA256 of their address key (`client_address`)
    under the store's secret (`voter_secret`), the same in the app and the dashboard; without the secret it cannot
    be matched to an address, even by trying every address of a network."""
    return hmac.new(secret, f"workbench-voter:{address}".encode(), hashlib.sha256).hexdigest()[:32]


# --- the admin token ---------------------------------------------------------------------------------------


class _Throttle:
    """Recent wrong admin tokens, per address key (as digests, so a repeat is not a new guess) and in all, and
    the addresses that recently gave the right one."""

    MAX_KEYS = 10_000  # addresses remembered at once, so a flood of addresses cannot exhaust memory

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wrong: dict[str, deque[tuple[float, bytes]]] = {}
        self._all: deque[float] = deque()
        self._proven: dict[str, float] = {}

    def _trim(self, now: float) -> None:
        while self._all and now - self._all[0] > FAILURE_WINDOW_S:
            self._all.popleft()
        for key in [k for k, v in self._wrong.items() if not v or now - v[-1][0] > FAILURE_WINDOW_S]:
            del self._wrong[key]

    def check(self, who: str, token: str, expected: str) -> None:
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            mine = self._wrong.get(who, deque())
            while mine and now - mine[0][0] > FAILURE_WINDOW_S:
                mine.popleft()
            if any(d == digest for _, d in mine):  # known to be wrong: the same answer, and not a new guess
                raise WorkbenchError(NEEDS_TOKEN)
            while self._all and now - self._all[0] > FAILURE_WINDOW_S:
                self._all.popleft()
            crowded = len(self._all) >= MAX_FAILURES_ALL
            if len(mine) >= MAX_FAILURES or (crowded and mine):
                wait = int(FAILURE_WINDOW_S - (now - mine[0][0])) + 1
                raise WorkbenchError(f"Too many wrong admin tokens from your address: try again in {wait} seconds.")
            if hmac.compare_digest(token.encode(), expected.encode()):
                self._wrong.pop(who, None)
                self._proven[who] = now
                return
            mine.append((now, digest))
            self._wrong[who] = mine
            self._all.append(now)
            if len(self._wrong) > self.MAX_KEYS or len(self._proven) > self.MAX_KEYS:
                self._trim(now)
                self._proven = {k: t for k, t in self._proven.items() if now - t < PROVEN_S}
        raise WorkbenchError(NEEDS_TOKEN)

    def proven(self, who: str) -> bool:
        with self._lock:
            seen = self._proven.get(who)
        return seen is not None and time.monotonic() - seen < PROVEN_S

    def reset(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._wrong.clear()
            self._all.clear()
            self._proven.clear()


THROTTLE = _Throttle()


def check_admin(expected: str | None, open_now: bool, token: str | None, who: Caller = SHELL) -> None:
    """Raise WorkbenchError unless an admin action may go ahead.

    Args:
        expected: The configured admin token, or None.
        open_now: Whether admin actions are open to this caller without a token (`Policy.open_for`).
        token: The token the caller gave.
        who: The caller, for throttling wrong tokens (this machine's shell is never throttled: it could read the
            token anyway).
    """
    if expected is None:
        if open_now:
            return
        raise WorkbenchError(CLOSED)
    if not token or not isinstance(token, str):
        raise WorkbenchError(NEEDS_TOKEN)  # no guess was made: nothing to count
    if who.address == LOCAL:
        if not hmac.compare_digest(token.encode(), expected.encode()):
            raise WorkbenchError(NEEDS_TOKEN)
        return
    THROTTLE.check(who.address, token, expected)


@dataclass(frozen=True)
class Policy:
    """Who may take admin actions: the token, and to whom they are open without one.

    Attributes:
        token: WORKBENCH_ADMIN_TOKEN, or None.
        open_to: Without a token: "local" (callers that really are this machine), "all" (WORKBENCH_ADMIN_OPEN=1)
            or "none".
    """

    token: str | None = None
    open_to: str = "local"

    def __repr__(self) -> str:
        return f"Policy(token={'set' if self.token else None}, open_to={self.open_to!r})"

    def open_for(self, who: Caller) -> bool:
        """Whether admin actions are open to `who` without a token (and whether `who` is the app's owner, with the
        owner's sizes and no rate limits)."""
        return self.open_to == "all" or (self.open_to == "local" and who.local)

    def check(self, token: str | None, who: Caller = SHELL) -> None:
        """Raise WorkbenchError unless `who` may take an admin action with `token` (throttled, see the module)."""
        check_admin(self.token, self.open_for(who), token, who)

    def allowed(self, token: str | None, who: Caller = SHELL) -> bool:
        """Whether `check` passes: for what a page shows. Goes through the same throttle: a page's timer asking
        with a wrong token is a guess like any other (repeats of the same token are not counted again)."""
        try:
            self.check(token, who)
        except WorkbenchError:
            return False
        return True

    def proven(self, who: Caller) -> bool:
        """Whether `who` may act as the admin without giving the token again: open to them, or their address gave
        the right token within the last hour (what an upload, which carries no token, is allowed by)."""
        return self.open_for(who) or (self.token is not None and THROTTLE.proven(who.address))
