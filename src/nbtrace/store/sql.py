"""The store's SQL, written once for SQLite and PostgreSQL: :class:`SQLStore`.

Why one set of statements: every statement runs on both engines (the common subset: ``ON
CONFLICT``, ``EXISTS``, ``substr``); a backend only supplies connections, transactions, the
placeholder style and error translation (see :class:`Backend`). The query language compiles
through :mod:`.query`, which targets both dialects from one place too.

The store is composed of one part per concern, each a mixin in its own module:

- :mod:`.write` -- applying a batch of ops from a kernel's writer (artifacts in chunks);
- :mod:`.ids` -- resolving a run id or prefix; marking dead runs ``crashed``;
- :mod:`.listing` -- a page of run summaries and the count of matching runs;
- :mod:`.documents` -- one run's document, its series, children, artifacts and sources;
- :mod:`.edits` -- rename, tags, note, verdict, delete;
- :mod:`.transfer` -- export documents and import them;
- :mod:`.jobs` -- the server's re-execution jobs and sweeps;

all standing on :mod:`.engine` (the backend, its cursor, the shared state).
"""

from __future__ import annotations

from .edits import EditsMixin
from .engine import Backend
from .engine import _Cursor as _Cursor  # benchmarks/query_plans.py spies on its execute
from .jobs import JobsMixin
from .listing import COUNT_BOUND, SUMMARY_COLUMNS, Total
from .schema import RUN_COLUMNS  # defined by the migrations; here for importers from before
from .transfer import TransferMixin

__all__ = ["COUNT_BOUND", "RUN_COLUMNS", "SUMMARY_COLUMNS", "Backend", "SQLStore", "Total"]


class SQLStore(TransferMixin, EditsMixin, JobsMixin):
    """A :class:`~.base.Store` over any :class:`Backend`."""
