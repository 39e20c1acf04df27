"""The one store each app process opens per database URL, shared by the Arena, the Leaderboard and the chat's
feedback (opened on first use, never when the UI is built).

    store = shared_store(ctx.settings)

Pure Python with no Gradio import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.store import Store

_LOCK = threading.Lock()
_STORES: dict[tuple[str, object], Store] = {}


def shared_store(settings: Settings) -> Store:
    """The store named by `settings` (its URL and admin rules), opened once per process."""
    from workbench.store import Store

    key = (str(settings.db_url), settings.access)
    with _LOCK:
        if key not in _STORES:
            _STORES[key] = Store.open(settings)
        return _STORES[key]
