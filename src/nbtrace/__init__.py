"""nbtrace: experiment traceability for Jupyter.

``%load_ext nbtrace`` in a notebook registers the magics (``%track_run``, ``%log_param``,
``%log_metric``, ``%end_run``); the Python API (``nbtrace.start_run``, ``log_metric``, ...)
works in loops and scripts. Every run records its code (cells, hashes), environment, git state
and resources, and can be re-executed later.

Importing this package is light on purpose (no tornado, no JupyterLab): the API functions are
loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "start_run", "end_run", "active_run", "log_param", "log_params", "log_metric",
    "log_metrics", "set_tag", "set_tags", "log_artifact", "log_input", "runs", "flush",
    "configure", "iter_runs", "set_experiment", "log_text", "log_dict", "log_figure",
}

__all__ = sorted(_API) + ["load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'nbtrace' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbtrace``: register magics and start recording cells."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbtrace``: stop recording and write everything pending."""
    from .magics import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter server extension (REST API and re-execution)."""
    return [{"module": "nbtrace.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The JupyterLab extension (the sidebar)."""
    return [{"src": "labextension", "dest": "nbtrace"}]
