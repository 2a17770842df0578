"""Which run a reference names, and which running runs are dead (crash reaping).

Why together: every read and edit first turns a user's id or id prefix into one run, and
first marks the runs whose kernel is gone as crashed, so that what it shows is true now.
"""

from __future__ import annotations

import os
import time

from ..errors import AmbiguousIdError, NotFoundError, one_line
from ..util import pid_alive
from .engine import SQLBase

_MAX_ID_LEN = 64


class IdsMixin(SQLBase):
    """Run ids and prefixes; marking dead runs ``crashed``."""

    def resolve_run_id(self, ref: str) -> str:
        ref = (ref or "").strip()
        if not ref or len(ref) > _MAX_ID_LEN or not all(c.isalnum() or c == "-" for c in ref):
            raise NotFoundError(f"no run with id {one_line(ref, 80)!r}")
        with self._cur() as cur:
            cur.execute("SELECT id FROM runs WHERE id = ?", (ref,))
            if cur.fetchone():
                return ref
            cur.execute(
                "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6",
                (len(ref), ref),
            )
            found = [r[0] for r in cur.fetchall()]
        if not found:
            raise NotFoundError(f"no run with id {ref!r}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise AmbiguousIdError(f"run id prefix {ref!r} matches several runs: {shown}")
        return found[0]

    # ------------------------------------------------------------------ crash detection
    def reap(self) -> int:
        now = time.time()
        with self._cur() as cur:
            cur.execute(
                "SELECT id, host, pid, heartbeat_at, started_at FROM runs WHERE status = 'running'"
            )
            running = cur.fetchall()
        dead = []
        for run_id, host, pid, hb, started in running:
            if host == self.host and pid:
                alive = pid == os.getpid() or pid_alive(pid, since=started)
            else:
                alive = (hb or started) > now - self.heartbeat_timeout
            if not alive:
                dead.append((hb or started, run_id))
        if dead:
            dead = self._last_signs_of_life(dead)
            with self._cur(write=True) as cur:
                cur.executemany(
                    "UPDATE runs SET status = 'crashed', ended_at = ?"
                    " WHERE id = ? AND status = 'running'",
                    dead,
                )
        return len(dead)

    def _last_signs_of_life(self, dead: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """``(end time, run id)`` of crashed runs: the latest of the heartbeat (also written at
        each cell's end) and the last metric logged, so a crashed 4 s run does not read as
        lasting 2 ms."""
        out = []
        with self._cur() as cur:
            for hb, run_id in dead:
                cur.execute("SELECT max(ts) FROM metrics WHERE run_id = ?", (run_id,))
                r = cur.fetchone()
                last = r[0] if r and r[0] is not None else hb
                out.append((max(hb, last), run_id))
        return out

    def _maybe_reap(self) -> None:
        """Reap at most once a second: reads stay cheap under polling."""
        now = time.monotonic()
        if now - self._last_reap > 1.0:
            self._last_reap = now
            self.reap()
