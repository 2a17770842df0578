"""Artifacts that differ in bytes but not in meaning: the canonical forms the verdict compares.

Why: a re-execution that trained the same model must not read as ``diverged`` because the
files that carry it embed where and when they were written. Two such formats are common in
notebooks, both from MLflow's ``log_model``:

- ``MLmodel`` (YAML): names the run, the model's id and uuid, the time it was created and the
  absolute artifact folder. Those lines are dropped; every other line (flavors, versions,
  signature, the file it loads) must be equal.
- zip containers (skops, ``.keras``, ``.npz``, a zipped folder): every member carries its
  modification time, and skops names its array members after ``id()`` of the array (a memory
  address), and its ``schema.json`` gives every object an ``"__id__"`` that is ``id()`` too.
  The canonical form is the sorted list of members, each named with its digit runs masked and
  identified by its CRC-32 and size; text members (JSON, YAML, text) are compared with the other
  members' names in them replaced by those members' CRCs (a renamed member still has to be
  referenced where it was) and skops' ``"__id__"`` values numbered in order of first
  appearance (objects shared on one side must be shared alike on the other).

Anything else, and anything over :data:`MAX_BYTES` or malformed, is compared by bytes as before:
a rule may only ever turn a byte difference into "equal", never hide a real change.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

#: Artifacts larger than this are compared by bytes only (both sides are read into memory).
MAX_BYTES = 64 * 1024 * 1024
#: Members of a zip read as text (their names masked), and the cap on a zip's member count.
_TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".txt", ".cfg", ".xml")
_MAX_MEMBERS = 10_000
_MAX_TEXT_MEMBER = 4 * 1024 * 1024
#: MLmodel's top-level keys that name this run or this moment, not the model.
_MLMODEL_VOLATILE = re.compile(
    rb"^(?:artifact_path|model_id|model_uuid|run_id|utc_time_created|model_size_bytes):.*$",
    re.MULTILINE,
)
_DIGITS = re.compile(r"\d{6,}")
_SKOPS_ID = re.compile(r'("__id__":\s*)(\d+)')


def rule_for(name: str) -> Callable[[bytes], object]:
    """The canonical form to compare artifact ``name`` by (anything not a zip: its bytes)."""
    base = name.rsplit("/", 1)[-1]
    if base == "MLmodel":
        return _mlmodel
    return _zip_or_bytes


def equivalent(name: str, a: bytes, b: bytes) -> bool:
    """Whether two versions of artifact ``name`` differ only in what :mod:`.normalise` ignores."""
    if a == b:
        return True
    if len(a) > MAX_BYTES or len(b) > MAX_BYTES:
        return False
    rule = rule_for(name)
    try:
        return rule(a) == rule(b)
    except (ValueError, zipfile.BadZipFile, OSError, RuntimeError, EOFError, UnicodeError):
        return False


def _mlmodel(data: bytes) -> object:
    return _MLMODEL_VOLATILE.sub(b"", data).replace(b"\r\n", b"\n").strip()


def _zip_or_bytes(data: bytes) -> object:
    if not data.startswith(b"PK\x03\x04"):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > _MAX_MEMBERS:
            return data
        crc = {i.filename: f"<{i.CRC:08x}:{i.file_size}>" for i in infos}
        names = sorted(crc, key=len, reverse=True)  # longest first: no partial replacements
        members = []
        for info in infos:
            key: object = crc[info.filename]
            if info.filename.lower().endswith(_TEXT_SUFFIXES) and (
                info.file_size <= _MAX_TEXT_MEMBER
            ):
                text = z.read(info).decode("utf-8")
                for other in names:
                    if other != info.filename and other in text:
                        text = text.replace(other, crc[other])
                key = _renumber_ids(text)
            members.append((_DIGITS.sub("#", info.filename), key))
    return sorted(members, key=repr)


def _renumber_ids(text: str) -> str:
    seen: dict[str, int] = {}
    return _SKOPS_ID.sub(lambda m: f"{m.group(1)}{seen.setdefault(m.group(2), len(seen))}", text)
