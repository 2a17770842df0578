"""The route table of the REST API: everything lives under ``{base_url}nbtrace/api``.

One table, so that a reader (and the test that checks every route requires authentication)
sees the whole API in one place. ``openapi.yaml`` at the repository root describes it.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from . import handlers as h
from . import job_handlers as jh

NAMESPACE = "nbtrace/api"

_RUN = r"(?P<run_id>[^/]+)"

#: (path under the namespace, handler class)
ROUTES: list[tuple[str, type]] = [
    (r"/runs", h.RunsHandler),
    (rf"/runs/{_RUN}", h.RunHandler),
    (rf"/runs/{_RUN}/metrics/(?P<key>.+)", h.MetricHandler),
    (rf"/runs/{_RUN}/artifacts/(?P<name>.+)", h.ArtifactHandler),
    (rf"/runs/{_RUN}/drift", h.DriftHandler),
    (rf"/runs/{_RUN}/rerun", jh.RerunHandler),
    (r"/compare", h.CompareHandler),
    (r"/jobs", jh.JobsHandler),
    (r"/jobs/(?P<job_id>[^/]+)", jh.JobHandler),
    (rf"/runs/{_RUN}/sweep", jh.SweepHandler),
    (r"/sweeps/(?P<sweep_id>[^/]+)", jh.SweepStatusHandler),
]


def api_prefix(web_app: Any) -> str:
    """The URL prefix of the API for this server's ``base_url``."""
    return url_path_join(web_app.settings["base_url"], NAMESPACE)


def setup_route_handlers(web_app: Any) -> None:
    """Register every route on ``web_app``."""
    prefix = api_prefix(web_app)
    web_app.add_handlers(".*$", [(prefix + path, handler) for path, handler in ROUTES])
