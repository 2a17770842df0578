"""Memory of a big artifact: the kernel logging it, and the server serving it to 3 clients.

Prints figures (no assertions; the tests check bounds). Run from the repository root::

    .venv/bin/python benchmarks/artifact_memory.py [SIZE_MB]

Kernel side: a fresh Python process (the tracker is the kernel's) logs a SIZE_MB file with
``nbtrace.log_artifact`` and flushes; its peak RSS before and after is read from
``ru_maxrss``. When the ``mlflow`` package is importable, the same file is logged with
``mlflow.log_artifact`` (file store) in another process, side by side. Server side: the store's
``artifact_stream`` is read by three concurrent readers (threads, as the server's handler reads
it off the event loop) and the peak of Python allocations is traced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path

KERNEL = """
import json, resource, sys
import nbtrace
nbtrace.configure(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with nbtrace.start_run("big"):
    nbtrace.log_artifact(sys.argv[2])
    nbtrace.flush()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after}))
"""

MLFLOW = """
import json, os, resource, sys
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import mlflow
mlflow.set_tracking_uri("file://" + sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with mlflow.start_run():
    mlflow.log_artifact(sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after}))
"""


def _child(code: str, *args: str, env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.bin"
        with open(big, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(size_mb):
                f.write(block)
        db = str(Path(tmp) / "runs.db")
        env = dict(os.environ, JUPYTER_DATA_DIR=str(Path(tmp) / "data"))
        k = _child(KERNEL, db, str(big), env=env)
        grown = (k["after_kb"] - k["before_kb"]) / 1024
        print(
            f"nbtrace log_artifact {size_mb} MB: peak RSS {k['before_kb'] / 1024:.0f} ->"
            f" {k['after_kb'] / 1024:.0f} MB (+{grown:.0f} MB, {grown / size_mb:.2f}x the file)"
        )
        try:
            m = _child(MLFLOW, str(Path(tmp) / "mlruns"), str(big), env=env)
        except (subprocess.CalledProcessError, ValueError):
            print(
                "mlflow log_artifact: mlflow not installed (pip install -r benchmarks/"
                "requirements.txt)"
            )
        else:
            mg = (m["after_kb"] - m["before_kb"]) / 1024
            print(
                f"mlflow  log_artifact {size_mb} MB: peak RSS +{mg:.0f} MB"
                f" (nbtrace / mlflow growth: {grown / mg if mg > 0 else float('nan'):.2f})"
            )

        from nbtrace.store import open_store

        store = open_store(db)
        rid = store.list_runs()[0][0]["id"]
        tracemalloc.start()
        tracemalloc.reset_peak()

        def read() -> None:
            _, chunks = store.artifact_stream(rid, "big.bin")
            for _ in chunks:
                pass

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        store.close()
        print(
            f"server side, 3 readers of {size_mb} MB: peak Python allocations {peak:.1f} MB"
            f" ({peak / (3 * size_mb):.3f}x three whole blobs)"
        )


if __name__ == "__main__":
    main()
