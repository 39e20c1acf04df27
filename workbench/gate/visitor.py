"""Who sent a request, made once per event the same way for every entry point.

    who = visitor(settings, peer, headers)        # a Gradio request, a Streamlit run, an HTTP API call
    who.owner, who.address, who.sizes             # the owner's sizes and no rate limits, or a visitor's
    who.voter(settings)                           # the keyed id anonymous ballots count under

"Owner" is `Settings.is_owner`: a caller that really is this machine (`workbench.access.is_local_request`:
loopback peer, loopback Host and Origin, no proxy header, not shared) while admin actions are open to it, or
everyone with WORKBENCH_ADMIN_OPEN=1. Everyone else is a visitor, counted by their address key
(`workbench.access.client_address`, the address our own proxy saw), never by anything they choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.access import SHELL, Caller, caller, voter_id
from workbench.config import Settings
from workbench.gate.sizes import Sizes, sizes_for


@dataclass(frozen=True)
class Visitor:
    """Who sent a request, as the server functions need it.

    Attributes:
        caller: Their address key and whether they really are this machine (`workbench.access.Caller`).
        owner: The app's owner (`Settings.is_owner`): the owner's sizes, no rate limits, typed rater names.
        sizes: What one of their requests may hold.
    """

    caller: Caller
    owner: bool
    sizes: Sizes

    @property
    def address(self) -> str:
        """The address key their limits count under."""
        return self.caller.address

    def voter(self, settings: Settings) -> str:
        """The id their anonymous ballots count under (keyed with the store's secret or WORKBENCH_VOTER_KEY, never
        the address alone)."""
        return voter_id(self.address, settings.voter_secret())


def visitor_of(settings: Settings, who: Caller) -> Visitor:
    """The Visitor of a known Caller."""
    owner = settings.is_owner(who)
    return Visitor(who, owner, sizes_for(settings, owner))


def visitor(settings: Settings, peer: str | None, headers: Any, *, shared: bool | None = None) -> Visitor:
    """The Visitor of an HTTP request from its peer address and headers (`shared`: the server has a share link,
    default `settings.share`; a dashboard has none)."""
    shared = settings.share if shared is None else shared
    return visitor_of(settings, caller(peer, headers, trusted_proxies=settings.trusted_proxies, shared=shared))


def shell(settings: Settings) -> Visitor:
    """This machine's own shell (the CLI, scripts, in-process calls): the owner."""
    return visitor_of(settings, SHELL)
