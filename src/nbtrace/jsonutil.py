"""JSON encoding that survives NaN and infinities.

Why: metrics are floats, and NaN/inf are legitimate values (a diverged loss). Python's json
emits ``NaN`` which strict parsers (browsers' ``JSON.parse``) reject. The wire format encodes a
non-finite float as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``; :func:`decode_float`
reverses it. Inside the store, values keep their exact bits.
"""

from __future__ import annotations

import json
import math
from typing import Any

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(x: float) -> float | str:
    """Return ``x`` or, when it is not finite, its strict-JSON string spelling."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def decode_float(x: Any) -> Any:
    """Inverse of :func:`encode_float` (anything else is returned unchanged)."""
    if isinstance(x, str) and x in _SPECIAL:
        return _SPECIAL[x]
    return x


def sanitize(obj: Any) -> Any:
    """Recursively replace non-finite floats by their string spelling (strict JSON)."""
    if isinstance(obj, float):
        return encode_float(obj)
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """Strict JSON text (no bare NaN/Infinity) of ``obj``."""
    return json.dumps(sanitize(obj), allow_nan=False, ensure_ascii=False, default=str, **kw)


def param_to_json(value: Any) -> str:
    """Serialize a parameter value keeping its JSON type; floats keep NaN/inf exactly.

    Non-JSON values (numpy scalars, arrays, objects) become their Python number when they
    have one, else their ``repr`` string: a parameter must always be recordable.
    """
    value = to_plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps({"$float": encode_float(value)})
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(repr(value), ensure_ascii=False)


def param_from_json(text: str) -> Any:
    """Inverse of :func:`param_to_json`."""
    v = json.loads(text)
    if isinstance(v, dict) and set(v) == {"$float"}:
        return decode_float(v["$float"])
    return v


def to_plain(value: Any) -> Any:
    """Turn numpy scalars (and similar ``.item()`` holders) into Python scalars."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return item()
        except Exception:  # noqa: BLE001 - any failure just means "not a scalar"
            return value
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def param_number(value: Any) -> float | None:
    """The numeric value a filter compares against, or None for non-numbers (bools excluded)."""
    value = to_plain(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:  # an int beyond any float: recorded, but not comparable as a number
        return None
    return f if not math.isnan(f) else None
