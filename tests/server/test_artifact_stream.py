"""Artifacts: one name rule at the call, and streamed in chunks both ways (issue 12, item 11).

Given a real kernel, when it logs an artifact under a name the REST side could never serve, then
the call fails with one line. When it logs a 64 MB artifact, then its peak memory grows by far
less than the artifact (it is copied and stored in 1 MiB chunks); and when three clients
download it from the real server at once, the server holds chunks, not three copies of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from typing import Any

import pytest

from nbtrace.store import open_store

from .conftest import run_notebook

SIZE = 64 * 2**20
MB = 2**20


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("big")
    h = hashlib.sha256()
    with open(work / "big.bin", "wb") as f:
        block = os.urandom(MB)
        for i in range(SIZE // MB):
            piece = block[:-1] + bytes([i % 256])
            h.update(piece)
            f.write(piece)
    db = str(work / "runs.db")
    cells = [
        "%load_ext nbtrace",
        "import resource, nbtrace\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "%track_run big\n"
        "info = nbtrace.log_artifact('big.bin', name='models/big.bin')",
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('GROWTH', (after - before) * 1024, info['sha256'], info['size'])",
    ]
    for name in ("../x", "/abs/x", "a\\b", "a\r\nb", "a//b", "./x", "C:x"):
        cells.append(f"nbtrace.log_artifact('big.bin', name={name!r})")
    cells.append("%end_run")
    data_dir = work / "jupyter-data"
    nb = run_notebook(
        cells, db, work, allow_errors=True, timeout=300, env={"JUPYTER_DATA_DIR": str(data_dir)}
    )
    store = open_store(db)
    rid = store.list_runs()[0][0]["id"]
    store.close()
    return {"db": db, "id": rid, "nb": nb, "sha": h.hexdigest(), "data_dir": data_dir}


def test_kernel_logs_a_big_artifact_in_bounded_memory(big: dict[str, Any]) -> None:
    out = "".join(o.get("text", "") for o in big["nb"].cells[2].outputs)
    _, growth, sha, size = out.split()
    assert sha == big["sha"] and int(size) == SIZE
    assert int(growth) < SIZE // 4, f"peak memory grew {int(growth) / MB:.0f} MB"
    store = open_store(big["db"])
    meta, chunks = store.artifact_stream(big["id"], "models/big.bin")
    h = hashlib.sha256()
    for chunk in chunks:
        assert len(chunk) <= MB
        h.update(chunk)
    store.close()
    assert meta["size"] == SIZE and h.hexdigest() == big["sha"]
    staging = big["data_dir"] / "nbtrace" / "staging"
    assert staging.is_dir() and not any(staging.iterdir())  # the staged copy was removed


def test_log_artifact_refuses_names_the_server_cannot_serve(big: dict[str, Any]) -> None:
    for cell in big["nb"].cells[3:-1]:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, cell.source
        assert errors[0].ename == "UsageError" and "artifact name" in errors[0].evalue
        assert "\n" not in errors[0].evalue
    store = open_store(big["db"])
    assert [a["name"] for a in store.get_run(big["id"])["artifacts"]] == ["models/big.bin"]
    store.close()


@pytest.fixture
def server_db(big: dict[str, Any]) -> str:
    return big["db"]


async def test_server_streams_to_three_clients(jp_fetch: Any, big: dict[str, Any]) -> None:
    digests = [hashlib.sha256() for _ in range(3)]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        responses = await asyncio.gather(
            *(
                jp_fetch(
                    "nbtrace",
                    "api",
                    "runs",
                    big["id"],
                    "artifacts",
                    "models",
                    "big.bin",
                    streaming_callback=d.update,
                    request_timeout=300,
                )
                for d in digests
            )
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for resp, d in zip(responses, digests):
        assert resp.code == 200 and d.hexdigest() == big["sha"]
        assert resp.headers["Content-Length"] == str(SIZE)
        assert resp.headers["Content-Disposition"].startswith("attachment")
    assert peak < SIZE // 2, f"the server held {peak / MB:.0f} MB for three downloads"


async def test_a_current_copy_is_not_sent_again(jp_fetch: Any, big: dict[str, Any]) -> None:
    from .conftest import check_openapi

    path = ("nbtrace", "api", "runs", big["id"], "artifacts", "models", "big.bin")
    resp = await jp_fetch(
        *path, headers={"If-None-Match": f'"{big["sha"]}"'}, raise_error=False
    )
    assert resp.code == 304 and not resp.body
    check_openapi(resp, "GET", f"/runs/{big['id']}/artifacts/models%2Fbig.bin")
