"""Small helpers shared across layers: ids, timestamps, process liveness.

Why a module of its own: the store, the server's job table and the re-execution engine all need
these, and none of them may import another's internals (``store.sql``, the kernel-side tracker).
This module imports nothing from nbtrace.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

#: Ids made ahead from one ``os.urandom`` call. Why: a run in a loop of 330 made its id with a
#: system call of its own (~9 µs after a model fit, on a virtual machine); 128 ids a call cost
#: the same. ``list.pop`` is atomic, so threads never share an id; a forked child drops the
#: parent's ids, which the parent will hand out too.
_ids: list[str] = []


def _forget_ids() -> None:
    _ids.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_ids)


def new_id() -> str:
    """A short unique run id (48 random bits, hex)."""
    try:
        return _ids.pop()
    except IndexError:
        pool = os.urandom(6 * 128).hex()
        _ids.extend(pool[i : i + 12] for i in range(0, len(pool), 12))
        return _ids.pop()


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
