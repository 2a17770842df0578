"""What every run records without the user asking, gathered by pure functions.

The kernel calls into this package at run start and end, so it must stay cheap to import and
fast to call: no IPython, tornado or Jupyter imports, no numpy/pandas, no subprocess at import.
Each module holds one concern and exposes cache keys so that the caller recomputes only what
changed:

- :mod:`~nbtrace.capture.environment` -- Python, OS, hardware, installed and imported packages,
  allowlisted environment variables;
- :mod:`~nbtrace.capture.redact` -- secret-looking names, credentials in URLs and DSNs;
- :mod:`~nbtrace.capture.git` -- commit, branch, dirty flag, diff and remote of a work tree;
- :mod:`~nbtrace.capture.notebook` -- the notebook's path and its saved code cells' hashes;
- :mod:`~nbtrace.capture.resources` -- wall time, CPU time and peak memory of a run;
- :mod:`~nbtrace.capture.seeds` -- recorded seeds for Python, NumPy and torch randomness;
- :mod:`~nbtrace.capture.deps`, :mod:`~.outputs`, :mod:`~.cache`, :mod:`~.runend`,
  :mod:`~.gitcapture`, :mod:`~.worker` -- dependencies, cell outputs, caching, the end-of-run
  and git captures off the user's thread.

Content hashes (:mod:`nbtrace.hashing`) are shared with the store, which checks them on import.

Import the submodules directly (``from nbtrace.capture.git import git_state``); this file
imports none of them on purpose.
"""
