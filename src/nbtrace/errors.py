"""One exception root for nbtrace.

Every error a user can cause (bad magic line, unknown run id, bad filter, locked or corrupt
store, unreachable team server) is an :class:`NBTraceError`. The adapters translate it at the
edge: ``UsageError`` in magics, ``HTTPError`` in handlers, a one-line message in the CLI. Code in
the core never prints or formats tracebacks for users.
"""

from __future__ import annotations


class NBTraceError(Exception):
    """Root of every nbtrace error; ``str(err)`` is a one-line message fit for a user."""

    #: HTTP status the REST adapter maps this error to.
    http_status: int = 400


class UsageError(NBTraceError):
    """The caller asked for something malformed (bad argument, bad value)."""


class NotFoundError(NBTraceError):
    """An unknown run id (or prefix), metric, artifact or job."""

    http_status = 404


class AmbiguousIdError(NBTraceError):
    """A run id prefix matches more than one run."""


class QueryError(NBTraceError):
    """A filter or sort expression that does not parse; the message names the position."""


class StoreError(NBTraceError):
    """The store cannot be opened or written (locked, corrupt, unreachable, read-only)."""

    http_status = 503


class BadDataError(StoreError):
    """The store refused a value itself (out of range, too big, a constraint), not its state.

    Why apart: a kernel's writer retries a batch the store could not take *now* (locked,
    read-only, full, unreachable), but retrying a batch that holds such a value fails forever;
    the writer instead isolates the op that causes it (see :mod:`nbtrace.writer`).
    """

    http_status = 400


class ConflictError(NBTraceError):
    """The request conflicts with the current state (e.g. deleting a running run)."""

    http_status = 409


class ForbiddenError(NBTraceError):
    """The caller may see this job or sweep but not change it (another identity's)."""

    http_status = 403


class ReplaySetupError(NBTraceError):
    """The replay kernel cannot do the replay (its folder or the store is out of its reach)."""

    http_status = 409


class HostError(NBTraceError):
    """The kernel manager (a gateway) could not be reached or refused a request."""

    http_status = 502


class PathRefusedError(NBTraceError):
    """The run's folder lies outside the folder the caller may run code in (the server root)."""

    http_status = 403


class TrustRequiredError(ConflictError):
    """Re-executing this run needs explicit trust (REST 409; the CLI's ``--trust``)."""


class RerunCancelledError(NBTraceError):
    """The re-execution was cancelled before it finished."""

    http_status = 409


class KernelError(NBTraceError):
    """The replay kernel could not be started or talked to (not an error in the user's code)."""

    http_status = 500


def one_line(text: object, limit: int = 300) -> str:
    """Collapse ``text`` to one printable line of at most ``limit`` characters.

    Why: names and values in error messages come from users (1 MB strings, newlines, control
    characters); an error message must stay one readable line whatever they hold.
    """
    s = str(text)
    s = "".join(ch if ch.isprintable() else " " for ch in s)
    s = " ".join(s.split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s
