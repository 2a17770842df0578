"""Artifact staging: the copy of a logged file that the writer stores later.

Why a copy: the writer stores it off the user's thread, and the user may rewrite the file
meanwhile (a checkpoint saved every epoch); the copy is what was logged. Why in chunks: a
200 MB artifact must not sit in the kernel's memory (it grew the kernel by 600 MB when read
whole); the store reads the copy in chunks too (the ``artifact_file`` op), then deletes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from .errors import UsageError, one_line

log = logging.getLogger("nbtrace")

CHUNK = 1 << 20


def stage_copy(src: Path) -> tuple[str, str, int]:
    """Copy ``src`` to the staging folder 1 MiB at a time, hashing as it goes; returns
    ``(staged path, sha256, size)``."""
    from .config import jupyter_data_dir

    folder = jupyter_data_dir() / "nbtrace" / "staging"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(prefix="artifact-", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot stage the artifact in {folder}: {exc.strerror}") from None
    h = hashlib.sha256()
    size = 0
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            while True:
                chunk = fin.read(CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                fout.write(chunk)
                size += len(chunk)
    except OSError as exc:
        try:
            os.unlink(staged)
        except OSError as gone:
            log.warning("nbtrace: a partial artifact copy was left at %s (%s)", staged,
                        one_line(gone))
        raise UsageError(f"cannot read {one_line(str(src), 200)}: {exc.strerror}") from None
    return staged, h.hexdigest(), size
