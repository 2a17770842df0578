"""Small helpers shared across layers: ids, timestamps, process liveness, printable DSNs.

Why a module of its own: the store, the server's job table and the re-execution engine all need
these, and none of them may import another's internals (``store.sql``, the kernel-side tracker,
``capture``). This module imports nothing from nbtrace.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone


def new_id() -> str:
    """A short unique run id (48 random bits, hex)."""
    return secrets.token_hex(6)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds (``...Z``), or None."""
    if ts is None:
        return None
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def pid_alive(pid: int | None, since: float | None = None) -> bool:
    """Whether process ``pid`` runs on this host (permission errors mean it does).

    A zombie (a killed kernel its parent has not reaped yet) still answers ``kill(pid, 0)``
    but will never write again: on Linux its ``/proc`` state ``Z`` (or ``X``) counts as dead.
    With ``since`` (when the run started), a process that started later is another one that
    reused the dead kernel's pid: dead too.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return not _gone(pid, since)


def _gone(pid: int, since: float | None) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # no /proc (macOS) or gone meanwhile: trust kill(0)
    # "pid (comm) S ...": comm may hold spaces and parentheses; fields follow the last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[:1] in ([b"Z"], [b"X"]):
        return True
    if since is None or len(fields) < 20:
        return False
    started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started > since + 2.0  # 2 s: clock ticks and rounding, never a real kernel


_BOOT: list[float] = []


def _boot_time() -> float:
    if not _BOOT:
        value = 0.0
        try:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        value = float(line.split()[1])
                        break
        except OSError:
            pass
        _BOOT.append(value)
    return _BOOT[0]


# ``scheme://userinfo@``: the userinfo runs up to the last ``@`` before the first ``/``, ``?``,
# ``#`` or whitespace, so an unencoded ``@`` inside a password is still removed with it.
URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s/?#]*)@")

# ``password=...`` as a libpq keyword (quoted or not) or as a URL query parameter.
_PASSWORD_KEYWORD = re.compile(
    r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s&#]+)", re.IGNORECASE
)


def _mask_password(match: re.Match[str]) -> str:
    scheme = match.group("scheme")
    userinfo = match.group("userinfo")
    user, sep, _password = userinfo.partition(":")
    if not sep:
        return match.group(0)
    return f"{scheme}://{user}:***@"


def redact_dsn(dsn: str) -> str:
    """A database location fit to print: the user kept, any password replaced by ``***``.

    Handles the URL form (``postgresql://alice:pw@host/db``), the ``?password=`` query
    parameter, and the libpq keyword form (``host=h user=alice password='p w'``). Why here:
    the store prints its own location (:mod:`nbtrace.store.postgres`) and the kernel's capture
    masks captured values (:mod:`nbtrace.capture.redact`); neither may import the other.
    """
    out = URL_USERINFO.sub(_mask_password, dsn) if "@" in dsn else dsn
    return _PASSWORD_KEYWORD.sub(lambda m: f"{m.group('key')}***", out)
