"""When re-executing a run needs the caller's explicit trust.

Why: re-executing replays the run's recorded code as whoever asks (the server's OS user for the
REST API). A run recorded by another user or on another host (a team store), or one that came
from ``nbtrace import`` (whose code, user and host are only what a file claims), may hold code
its re-executor has never read. Such a run is re-executed only when the request says so
(``"trust": true`` in ``POST runs/{id}/rerun``, ``nbtrace rerun --trust``); otherwise the answer
is a 409 naming who recorded it, so the user can read the code first (the Re-execute dialog
shows it with a confirmation).
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

from ..errors import TrustRequiredError, one_line
from ..store.base import Store


def local_identity() -> tuple[str | None, str]:
    """``(OS user, host name)`` of this process: whose account a replay runs code under."""
    try:
        user: str | None = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = None
    return user, socket.gethostname()


def trust_reason(store: Store, ref: str, requester: str | None = None) -> str | None:
    """Why re-executing run ``ref`` needs explicit trust, or None when it is the caller's own.

    A run is the caller's own when it was recorded on this host by this process's OS user (or
    by ``requester``, the name a re-execution through the server is recorded under), and did
    not come from an import.
    """
    run = store.get_run(ref)
    imported = store.is_imported(run["id"])
    who = f"{one_line(run.get('user') or '?', 60)}@{one_line(run.get('host') or '?', 80)}"
    if imported is not None:
        return (
            f"run {run['id']} was imported on {imported['imported_at']} (recorded by {who},"
            " as the imported file claims)"
        )
    user, host = local_identity()
    mine = {u for u in (user, requester) if u}
    if run.get("host") != host or run.get("user") not in mine:
        return f"run {run['id']} was recorded by {who}, not by you on this host"
    return None


def require_trust(
    store: Store, ref: str, trust: bool, requester: str | None = None, how: str = "--trust"
) -> dict[str, Any] | None:
    """Raise :class:`TrustRequiredError` unless run ``ref`` is the caller's own or ``trust``.

    ``how`` names the way to give trust in the message (``--trust`` or ``"trust": true``).
    Returns ``{"reason"}`` when trust was needed and given (for the record), else None.
    """
    reason = trust_reason(store, ref, requester)
    if reason is None:
        return None
    if not trust:
        raise TrustRequiredError(
            f"{reason}: re-executing it runs its recorded code as you. Read that code"
            f" (nbtrace show {ref}), then ask again with {how}"
        )
    return {"reason": reason}
