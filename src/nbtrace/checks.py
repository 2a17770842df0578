"""What a kernel accepts from the user's calls: names, metric values, steps, tags, statuses.

Why checks at the call and not in the store: a value the store refuses would fail in the
writer, off the user's thread, long after the cell that logged it (and, before the writer
isolated poison ops, blocked every later write). So each call raises
:class:`~nbtrace.errors.UsageError` at once, with the name in the message; the store's own
refusal (:mod:`nbtrace.writer`) is the net under these. The limits are :mod:`nbtrace.rules`',
shared with the REST side and ``nbtrace import``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import UsageError, one_line
from .jsonutil import to_plain
from .rules import MAX_NAME, MAX_VALUE

__all__ = ["MAX_NAME", "MAX_VALUE", "STEP_MAX", "check_name", "end_status", "json_str",
           "known_names", "metric_value", "step_value", "tag_value"]

#: JSON text of a str, as ``json.dumps(s, ensure_ascii=False)`` writes it (the C encoder).
json_str = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring

#: Largest |step| accepted: a step is stored as a signed 64-bit integer by both engines; a
#: larger one must fail at the call, not in the writer, where it blocked every later write.
STEP_MAX = 2**62

#: Names already validated, per length limit (so a loop logging the same keys checks them once).
_valid_names: dict[int, set[str]] = {}


#: How many validated names are remembered before the set starts over (bounded memory).
KNOWN_NAMES_MAX = 10_000


def known_names(limit: int = MAX_NAME) -> set[str] | None:
    """The names of length limit ``limit`` validated already (None before the first)."""
    return _valid_names.get(limit)


def check_name(kind: str, name: Any, limit: int = MAX_NAME) -> str:
    """Validate a run/param/metric/tag name: a short printable string."""
    known = _valid_names.get(limit)
    if known is not None and type(name) is str and name in known:
        return name
    _check_name(kind, name, limit)
    if known is None or len(known) > KNOWN_NAMES_MAX:
        known = _valid_names[limit] = set()
    known.add(name)
    return name


def _check_name(kind: str, name: Any, limit: int) -> str:
    if not isinstance(name, str):
        raise UsageError(f"{kind} name must be a string, not {type(name).__name__}")
    if not name or not name.strip():
        raise UsageError(f"{kind} name must not be empty")
    if len(name) > limit:
        raise UsageError(f"{kind} name is {len(name)} characters long; the limit is {limit}")
    if not name.isprintable():
        raise UsageError(f"{kind} name {one_line(name, 60)!r} contains control characters")
    return name


def metric_value(key: str, value: Any) -> float:
    """``value`` as the float a metric stores (numpy scalars, ints; not bools or strings)."""
    if isinstance(value, bool) or isinstance(value, str):
        raise UsageError(f"metric {key!r} must be a number, not {type(value).__name__}")
    try:
        v = float(to_plain(value))
    except OverflowError:
        raise UsageError(f"metric {key!r} is too large for a float") from None
    except (TypeError, ValueError):
        raise UsageError(
            f"metric {key!r} must be a number, not {one_line(type(value).__name__, 40)}"
        ) from None
    return v


def step_value(step: Any) -> int:
    """``step`` as the integer a metric stores (an integral float, a numpy integer)."""
    step = to_plain(step)
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise UsageError(f"step must be an integer, not {one_line(repr(step), 40)}")
    if isinstance(step, float):
        if not math.isfinite(step) or step != int(step):
            raise UsageError(f"step must be an integer, not {step!r}")
    step = int(step)
    if abs(step) > STEP_MAX:
        raise UsageError(f"step must be between -2**62 and 2**62, not {one_line(step, 40)}")
    return step


_END_STATUSES = {
    "finished": "finished",
    "failed": "failed",
    # MLflow's spellings (RunStatus), so MLflow-shaped code ends runs unchanged.
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "failed",
}


def end_status(status: Any) -> str:
    """The nbtrace status for an end-of-run status word (nbtrace's or MLflow's)."""
    found = _END_STATUSES.get(status) if isinstance(status, str) else None
    if found is None:
        raise UsageError(f"status must be 'finished' or 'failed', not {one_line(status, 40)!r}")
    return found


def tag_value(value: Any) -> str:
    """A tag's stored text: a string as is, anything else as its JSON."""
    s = value if isinstance(value, str) else json.dumps(to_plain(value), default=str)
    if len(s) > MAX_VALUE:
        raise UsageError(f"tag value is {len(s)} characters long; the limit is {MAX_VALUE}")
    return s
