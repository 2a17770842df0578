"""What the handlers share (``web_app.settings["nbtrace"]``), and how it stops.

Why a stop of its own: jupyter_server stops ``ExtensionApp`` extensions at shutdown but calls
nothing of a plain module extension such as this one, so :func:`nbtrace.server.
_load_jupyter_server_extension` arranges for :meth:`ExtensionState.stop` to run in the server's
own shutdown (see ``_unload_jupyter_server_extension``). Stopping cancels every job, gives the
running replays a bounded time to interrupt and shut down their kernels and save their state
(their threads use the store), then closes the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store.base import Store
    from . import NBTrace
    from .jobs import JobManager
    from .sweeps import SweepManager

#: Seconds the running replays get to end after their cancel at shutdown.
STOP_GRACE_S = 15.0


@dataclass
class ExtensionState:
    """The store, the job and sweep managers, and why the store is missing when it is."""

    config: NBTrace
    root_dir: str | None
    store: Store | None = None
    jobs: JobManager | None = None
    sweeps: SweepManager | None = None
    store_error: str | None = None
    stopped: bool = False

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop the sweeps and jobs, then close the store (server shutdown, tests); idempotent.

        The sweeps first (no further job of theirs starts), then the jobs (cancelled, the
        running ones awaited up to ``grace`` seconds), then the sweeps' last saves, and only
        then the store, which the jobs' threads write to until they end.
        """
        if self.stopped:
            return
        self.stopped = True
        if self.sweeps is not None:
            self.sweeps.shutdown()
        if self.jobs is not None:
            await self.jobs.stop(grace)
        if self.sweeps is not None:
            await self.sweeps.wait(grace)
        if self.store is not None:
            self.store.close()
