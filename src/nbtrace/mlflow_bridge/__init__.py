"""The MLflow bridge: MLflow's client writes nbtrace runs, and runs move between the two.

- :mod:`.store`: the tracking store behind ``mlflow.set_tracking_uri("nbtrace:")`` (MLflow's
  ``mlflow.tracking_store`` entry point);
- :mod:`.importer` / :mod:`.exporter`: ``nbtrace import mlflow+URI`` and
  ``nbtrace export --to mlflow+URI``, through ``MlflowClient`` so every MLflow backend works.

Only :mod:`.uri` and :mod:`.tables` load without MLflow; nothing in nbtrace's own import path
imports this package.
"""

from __future__ import annotations

from typing import Any


def tracking_store(store_uri: str | None = None, artifact_uri: str | None = None) -> Any:
    """MLflow's store builder for ``nbtrace:`` URIs (the ``mlflow.tracking_store`` entry point).

    Why a function here rather than the class: MLflow loads every registered entry point when
    it is imported; pointing at this light module keeps ``import mlflow`` from importing the
    store (and nbtrace's store code) until a tracking URI actually names nbtrace.
    """
    from .store import NBTraceTrackingStore

    return NBTraceTrackingStore(store_uri, artifact_uri)
