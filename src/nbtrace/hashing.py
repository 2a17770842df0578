"""Content hashes: sha256 of text, of files, and of JSON-able values.

Why one module: cells, notebooks, artifacts, inputs and package sets are all stored once per
distinct content, keyed by these hashes. Every writer must hash the same content the same way,
so the canonical forms (UTF-8 for text, sorted compact JSON for values) live here only.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

#: Read size for streaming file hashes: big enough to be fast, small enough to bound memory.
_CHUNK = 1 << 20


def sha256_text(s: str) -> str:
    """Hex sha256 of ``s`` encoded as UTF-8 (lone surrogates escaped rather than failing).

    Why ``surrogatepass``: a cell source may carry lone surrogates pasted from odd places; the
    hash must still be defined and stable rather than raise mid-capture.
    """
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """``(hex sha256, size in bytes)`` of the file at ``path``, read in 1 MiB chunks.

    Why streaming: artifacts and inputs can be gigabytes; memory stays bounded. Raises
    ``OSError`` when the file cannot be read: the caller decides what a missing input means.
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


def canonical_json(obj: Any) -> str:
    """The canonical JSON text of ``obj``: sorted keys, no spaces, non-ASCII kept as is.

    Raises ``TypeError`` for values JSON cannot encode: silently stringifying them could make two
    different values hash alike.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def stable_hash(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json` of ``obj``, for content-addressed deduplication.

    Equal values give equal hashes whatever the dict insertion order (a package set gathered in
    a different ``sys.path`` order is still the same set).
    """
    return sha256_text(canonical_json(obj))
