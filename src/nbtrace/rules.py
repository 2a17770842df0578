"""The character and size rules for names and values, shared by every path that writes them.

Why one module: the kernel, the REST ``PATCH`` and ``nbtrace import`` must refuse the same
things, or a value refused in a cell walks in through another door (a 5 MB name by PATCH, a
lone surrogate that makes the next read a 500, a tag name holding U+202E that reverses how the
sidebar shows it). Each check returns a one-line problem or ``None``; callers raise the error
class of their layer.
"""

from __future__ import annotations

from typing import Any

#: Longest param, metric and tag name (primary-key btree entries are capped in PostgreSQL).
MAX_NAME = 250
#: Longest run, experiment and artifact name.
MAX_LONG_NAME = 1000
#: Longest param text, tag value and note.
MAX_VALUE = 65_536
#: Longest run or kernel id (ids are short hex strings; a prefix is accepted everywhere).
MAX_ID = 64


def name_problem(kind: str, name: Any, limit: int = MAX_NAME) -> str | None:
    """Why ``name`` is not a valid ``kind`` name, or None.

    A name is a non-empty printable string: ``str.isprintable`` refuses control characters
    (NUL, CR, LF, tab), format characters (U+202E and the other bidirectional overrides) and
    lone surrogates, which cannot be encoded as UTF-8.
    """
    if not isinstance(name, str):
        return f"{kind} name must be a string, not {type(name).__name__}"
    if not name or not name.strip():
        return f"{kind} name must not be empty"
    if len(name) > limit:
        return f"{kind} name is {len(name)} characters long; the limit is {limit}"
    if not name.isprintable():
        return f"{kind} name contains control, format or unencodable characters"
    return None


def value_problem(kind: str, value: Any, limit: int = MAX_VALUE) -> str | None:
    """Why ``value`` is not a storable ``kind`` text (tag value, note), or None.

    Values may hold any text the kernel accepts in a tag value (newlines, NUL: PostgreSQL
    stores it as U+FFFD), but not lone surrogates, which are not UTF-8 (the kernel's writer
    replaces them; an edit is refused instead of failing), and not more than ``limit``
    characters.
    """
    if not isinstance(value, str):
        return f"{kind} must be a string, not {type(value).__name__}"
    if len(value) > limit:
        return f"{kind} is {len(value)} characters long; the limit is {limit}"
    if not _encodable(value):
        return f"{kind} contains characters that cannot be encoded as UTF-8 (lone surrogates)"
    return None


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def id_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a valid run/kernel id (ASCII letters, digits, ``-``), or None.

    Why so strict: ids travel in URLs and as prefixes in ``LIKE``-free lookups; an imported id
    such as ``../%_x`` or 5,000 characters long would be stored and then never be readable.
    """
    if not isinstance(value, str):
        return f"{kind} must be a string, not {type(value).__name__}"
    if not value or len(value) > MAX_ID:
        return f"{kind} must be 1 to {MAX_ID} characters long"
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in value):
        return f"{kind} may only hold ASCII letters, digits and '-'"
    return None


def artifact_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name an artifact, or None: the one rule of ``log_artifact``, import
    and the REST side.

    An artifact name is a relative, slash-separated path without ``.``/``..`` parts, empty
    parts, backslashes or a drive letter, so that ``GET runs/{id}/artifacts/{name}`` can always
    serve it and no client can mistake it for a path outside the run.
    """
    problem = name_problem("artifact", name, MAX_LONG_NAME)
    if problem:
        return problem
    if "\\" in name:
        return "an artifact name must not contain a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an artifact name must be a relative path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "an artifact name must not have empty, '.' or '..' parts"
    return None
