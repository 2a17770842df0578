"""What each executed cell displayed: a fingerprint, a short excerpt, and comparable items.

Why: a run that logs no metric is judged by what it showed; a replay that prints different
numbers, or draws a different figure, did not reproduce even when no metric says so. The kernel
adapter feeds stream text and display bundles (``execute_result`` / ``display_data``) here as
they happen (an append each: nothing is computed per ``print``); the cell is *sealed* when the
next cell starts or the kernel exits, which is the only place work is done.

Normalisation (:func:`normalize`) removes what differs between two honest executions: object
addresses, durations and progress-bar timings, dates and times, memory sizes, the temporary
file names ipykernel gives cells. Numbers are kept: the verdict compares them under its
tolerance. Images are compared by the sha256 of their bytes; small raster ones are kept so the
dialog can show original and replay side by side.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ..hashing import canonical_json, stable_hash

#: Characters of normalised text kept per cell (beyond: compared up to here, and said so).
MAX_TEXT = 65_536
#: Characters of the excerpt shown in the dialog and the CLI.
EXCERPT_CHARS = 400
#: Raster images up to this many bytes are kept (for the side-by-side view).
MAX_KEPT_IMAGE = 256 * 1024
RASTER = ("image/png", "image/jpeg", "image/gif")
#: MIME types whose content is random by design (widget model ids) or duplicated elsewhere.
_SKIPPED_MIMES = ("application/vnd.jupyter.widget-view+json", "text/latex")

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x…"),
    (re.compile(r"ipykernel_\d+/\d+\.py"), "ipykernel_…/….py"),
    (re.compile(r"/tmp/[^\s:'\"]*?(?=[:\s'\"]|$)"), "/tmp/…"),
    (re.compile(r"^(CPU times|Wall time):.*$", re.M), r"\1: …"),
    (re.compile(r"\[\d+:\d+(?::\d+)?<[^\]]*\]"), "[…]"),
    (re.compile(r"\d+(?:\.\d+)?\s?(?:it/s|s/it|B/s|kB/s|MB/s)"), "…/s"),
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?"
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        re.compile(
            r"\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|msec|s|sec|seconds?|secs|minutes?|mins?)\b"
            r"|\b\d+(?:\.\d+)?s\b"
        ),
        "<duration>",
    ),
    (re.compile(r"\b\d+(?:\.\d+)?\+?\s?(?:bytes|[KMGT]i?B)\b"), "<size>"),
]


def _carriage_returns(text: str) -> str:
    """Each line as a terminal shows it: what follows its last ``\\r`` (progress bars)."""
    if "\r" not in text:
        return text
    out = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p]
        out.append(parts[-1] if parts else "")
    return "\n".join(out)


def normalize(text: str) -> str:
    """``text`` without what honestly differs between two executions (see module doc)."""
    text = _carriage_returns(text)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else canonical_json(value)


class OutputRecorder:
    """One kernel's cell outputs: raw pieces of the running cell, sealed into a record.

    Not thread-safe beyond appends (the GIL makes ``list.append`` atomic), which is all the
    adapter's hooks do.
    """

    def __init__(self) -> None:
        self.pieces: list[tuple[str, Any]] = []
        self.size = 0

    def stream(self, name: str, text: str) -> None:
        """Text written to stdout/stderr."""
        if self.size < MAX_TEXT * 2 and text:
            self.pieces.append((name, text))
            self.size += len(text)
        elif text:
            self.size += len(text)

    def data(self, bundle: Mapping[str, Any]) -> None:
        """A display bundle (``{mime: data}``)."""
        if bundle:
            self.pieces.append(("data", dict(bundle)))

    def seal(self) -> tuple[str, str, dict[str, Any], dict[str, dict[str, str]]]:
        """The cell's ``(fingerprint, excerpt, data, images)`` and a fresh start.

        ``data`` is ``{"items": [...], "truncated": bool}``: items are ``{"kind", "text"}``
        (normalised) or ``{"kind", "sha256", "kept", "blob"?}`` for images (``sha256`` of the
        bytes, compared; ``blob`` the key of the kept copy); ``images`` maps each kept image's
        blob key (``stable_hash(["image", image])``, as every blob) to ``{"mime", "b64"}``.
        """
        pieces, self.pieces, size, self.size = self.pieces, [], self.size, 0
        items: list[dict[str, Any]] = []
        images: dict[str, dict[str, str]] = {}
        excerpt: list[str] = []
        for kind, value in pieces:
            if kind != "data":
                if items and items[-1]["kind"] == kind and "raw" in items[-1]:
                    items[-1]["raw"] += value
                else:
                    items.append({"kind": kind, "raw": value})
                continue
            for mime, content in sorted(value.items()):
                item = _bundle_item(mime, content, images)
                if item is not None:
                    items.append(item)
        for item in items:
            raw = item.pop("raw", None)
            if raw is not None:
                item["text"] = normalize(raw)[:MAX_TEXT]
                excerpt.append(_carriage_returns(raw))
            elif item["kind"] == "text/plain":
                excerpt.append(item["text"])
        data = {"items": items, "truncated": size > MAX_TEXT}
        fingerprint = hashlib.sha256(canonical_json(items).encode("utf-8")).hexdigest()
        text = "".join(e if e.endswith("\n") else e + "\n" for e in excerpt).strip("\n")
        if len(text) > EXCERPT_CHARS:
            text = text[: EXCERPT_CHARS - 1] + "…"
        return fingerprint, text, data, images


def _bundle_item(
    mime: str, content: Any, images: dict[str, dict[str, str]]
) -> dict[str, Any] | None:
    """The comparable item of one MIME type of a display bundle (None: not compared)."""
    if mime in _SKIPPED_MIMES:
        return None
    if mime.startswith("image/") and mime != "image/svg+xml":
        b64 = _text_of(content).replace("\n", "")
        try:
            raw = base64.b64decode(b64, validate=False)
        except (ValueError, TypeError):
            raw = b64.encode("utf-8", "replace")
        sha = hashlib.sha256(raw).hexdigest()
        kept = mime in RASTER and len(raw) <= MAX_KEPT_IMAGE
        if not kept:
            return {"kind": mime, "sha256": sha, "kept": False}
        image = {"mime": mime, "b64": b64}
        key = stable_hash(["image", image])
        images[key] = image
        return {"kind": mime, "sha256": sha, "kept": True, "blob": key}
    return {"kind": mime, "text": normalize(_text_of(content))[:MAX_TEXT]}
