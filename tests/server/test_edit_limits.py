"""``PATCH runs/{id}`` applies the kernel's limits and character rules (issue 12, item 9).

Given a run in the real server's store, when a client renames it, tags it or sets its note with
a lone surrogate, NUL, newline, U+202E or an oversized value, then the answer is a 400 with one
line (never a 500) and the run is unchanged; values the kernel accepts still go through.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from nbtrace.store import open_store

from .conftest import check_openapi, fetch_json, synthetic_run

RID = "ed17ed17ed17"


@pytest.fixture
def run_id(server_db: str) -> str:
    store = open_store(server_db)
    synthetic_run(store, RID, name="original")
    store.close()
    return RID


def _patch(raw: str) -> dict[str, Any]:
    return {"method": "PATCH", "body": raw, "headers": {"Content-Type": "application/json"}}


BAD = [
    ('{"name": "\\ud800"}', "run name"),
    ('{"name": "a\\u0000b"}', "run name"),
    ('{"name": "two\\nlines"}', "run name"),
    ('{"name": "evil\\u202eexe.txt"}', "run name"),
    (json.dumps({"name": "n" * 5_000_000}), "the limit is 1000"),
    ('{"tags": {"\\ud800": "v"}}', "tag name"),
    ('{"tags": {"a\\u0000": "v"}}', "tag name"),
    ('{"tags": {"st\\u202eage": "v"}}', "tag name"),
    ('{"tags": {"k\\nk": "v"}}', "tag name"),
    (json.dumps({"tags": {"t" * 251: "v"}}), "the limit is 250"),
    ('{"tags": {"ok": "\\udfff"}}', "lone surrogates"),
    ('{"note": "\\ud800"}', "lone surrogates"),
    (json.dumps({"note": "x" * 65_537}), "the limit is 65536"),
]


@pytest.mark.parametrize("raw,words", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
async def test_patch_refuses_what_the_kernel_refuses(
    jp_fetch: Any, run_id: str, raw: str, words: str
) -> None:
    code, data, resp = await fetch_json(jp_fetch, "runs", run_id, **_patch(raw))
    assert code == 400, data
    assert words in data["message"] and "\n" not in data["message"], data
    check_openapi(resp, "PATCH", f"/runs/{run_id}")
    code, run, _ = await fetch_json(jp_fetch, "runs", run_id)
    assert run["name"] == "original" and run["tags"] == {} and run["note"] is None


async def test_patch_accepts_what_the_kernel_accepts(jp_fetch: Any, run_id: str) -> None:
    body = {
        "name": "Réglage α=0.5 (2ᵉ essai)",
        "tags": {"stage": "dev\u00a01", "raw": "a\u0000b"},
        "note": "line one\nline two\ttabbed " + "n" * 60_000,
    }
    code, run, resp = await fetch_json(jp_fetch, "runs", run_id, **_patch(json.dumps(body)))
    assert code == 200, run
    check_openapi(resp, "PATCH", f"/runs/{run_id}", body=body)
    assert run["name"] == body["name"] and run["note"] == body["note"]
    assert run["tags"] == {"stage": "dev\u00a01", "raw": "a\u0000b"}  # as the kernel allows
