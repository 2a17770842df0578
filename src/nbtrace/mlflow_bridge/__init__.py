"""The MLflow bridge: MLflow's client writes nbtrace runs, and runs move between the two.

- :mod:`.store`: the tracking store behind ``mlflow.set_tracking_uri("nbtrace:")`` (MLflow's
  ``mlflow.tracking_store`` entry point);
- :mod:`.importer` / :mod:`.exporter`: ``nbtrace import mlflow+URI`` and
  ``nbtrace export --to mlflow+URI``, through ``MlflowClient`` so every MLflow backend works.

Only :mod:`.uri` and :mod:`.tables` load without MLflow; nothing in nbtrace's own import path
imports this package.
"""
