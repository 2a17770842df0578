"""What every verb shares: the store, JSON and table output, one-line warnings."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import one_line
from ..jsonutil import dumps


def store_of(args: argparse.Namespace) -> Any:
    from ..store import open_store

    return open_store(args.db)


def warn(message: str) -> None:
    """A one-line warning on stderr (something left behind, not an error of the verb)."""
    print(f"nbtrace: warning: {one_line(message, 500)}", file=sys.stderr)


def emit_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj, indent=2) + "\n")


def clip(s: Any, n: int) -> str:
    return one_line("" if s is None else s, n)


def fmt(v: Any, n: int = 24) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return clip(v if isinstance(v, str) else json.dumps(v), n)


def dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f}ms" if s < 1 else (f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m")


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
