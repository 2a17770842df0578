"""nbtrace's errors as MLflow's, at the edge of the tracking store.

Why: code written against MLflow catches ``MlflowException`` and reads its ``error_code``;
a ``NotFoundError`` from nbtrace must look like MLflow's ``RESOURCE_DOES_NOT_EXIST``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2

from ..errors import ConflictError, NBTraceError, NotFoundError

F = TypeVar("F", bound=Callable[..., Any])


def mlflow_errors(fn: F) -> F:
    """nbtrace errors as MLflow's (callers of MLflow's client catch MlflowException)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotFoundError as exc:
            raise MlflowException(str(exc), databricks_pb2.RESOURCE_DOES_NOT_EXIST) from None
        except ConflictError as exc:
            raise MlflowException(str(exc), databricks_pb2.RESOURCE_ALREADY_EXISTS) from None
        except NBTraceError as exc:
            raise MlflowException(str(exc), databricks_pb2.INVALID_PARAMETER_VALUE) from None

    return wrapper  # type: ignore[return-value]
