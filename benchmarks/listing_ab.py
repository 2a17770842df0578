#!/usr/bin/env python3
"""The filtered REST listing at 100,000 runs on PostgreSQL, two versions of nbtrace alternating.

    .venv/bin/python benchmarks/listing_ab.py [--base main] [--runs 100000] [--reps 30]

Why: on a machine shared with other jobs, figures from two runs minutes apart differ by more
than a plan change; here both versions answer the same requests in one run, alternately (the
order flips every round), on one throwaway cluster (``tests/pgcluster.py``, restarted with
``case_postgres``'s durable settings). The base version (``git archive BASE src``) fills one
database, which is copied; the working tree's version opens the copy (applying its
migrations). Each version is a ``jupyter server`` with the nbtrace extension, its ``src`` first
on ``PYTHONPATH``. Writes ``benchmarks/LISTING_AB.md``: medians and p95 per listing, the load
average, and whether both versions returned the same page and total (they must).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]

FILTER = "metrics.mse < 3000 and params.model = 'enet'"
#: (label, query string): the benchmark's two listings, then the others of docs/query-plans.md
#: and filters that match few runs.
LISTINGS = [
    ("filtered, sorted by -metrics.mse (the issue's target)", {"filter": FILTER,
                                                              "sort": "-metrics.mse"}),
    ("filtered, newest first", {"filter": FILTER}),
    ("params.model = 'enet', newest first", {"filter": "params.model = 'enet'"}),
    ("experiment = 'bench', sorted by metrics.mse", {"filter": "experiment = 'bench'",
                                                     "sort": "metrics.mse"}),
    ("metrics.mse > 3990 (1 run in 200), newest first", {"filter": "metrics.mse > 3990"}),
    ("params.alpha < 0.0001002 (54 runs), newest first", {"filter": "params.alpha < 0.0001002"}),
]


def _old_src(base: str, dest: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", base, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def _databases(cluster: Any, n: int, old_src: Path) -> tuple[str, str]:
    """One database filled and analyzed by the base version, and its copy for the new one."""
    old = cluster.create_database("old")
    fill = (
        "import sys; sys.path[:0] = [sys.argv[2]]\n"
        "from case_listing import fill_nbtrace\n"
        "from nbtrace.store.postgres import PostgresStore\n"
        "s = PostgresStore(sys.argv[1]); fill_nbtrace(s, 0, int(sys.argv[3])); s.close()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(old_src))
    subprocess.run([sys.executable, "-c", fill, cluster.url(old), str(HERE), str(n)],
                   check=True, env=env)
    cluster.admin("VACUUM ANALYZE", dbname=old)  # a server in use is vacuumed and analyzed
    new = f"new_{old}"
    cluster.admin(f'CREATE DATABASE "{new}" TEMPLATE "{old}" STRATEGY FILE_COPY')
    from nbtrace.store.postgres import PostgresStore

    PostgresStore(cluster.url(new)).close()  # the working tree's migrations
    return cluster.url(old), cluster.url(new)


def _measure(servers: dict[str, Any], reps: int) -> tuple[dict, dict]:
    times: dict[tuple[str, str], list[float]] = {}
    answers: dict[str, dict[str, Any]] = {}
    for i in range(reps + 3):  # three warm-up rounds
        names = list(servers) if i % 2 == 0 else list(servers)[::-1]
        for label, query in LISTINGS:
            qs = urllib.parse.urlencode({**query, "limit": 100})
            for name in names:
                t = time.perf_counter()
                body = servers[name].request("GET", f"/nbtrace/api/runs?{qs}")
                dt = time.perf_counter() - t
                page = tuple(r["id"] for r in body["runs"])
                answers.setdefault(label, {})[name] = (page, body["total"], body["total_exact"])
                if i >= 3:
                    times.setdefault((label, name), []).append(dt)
    return times, answers


def _report(times: dict, answers: dict, load: tuple, base: str, n: int, reps: int) -> str:
    def ms(x: float) -> str:
        return f"{x * 1e3:.1f} ms"

    rows = []
    for label, _ in LISTINGS:
        o, w = sorted(times[(label, "base")]), sorted(times[(label, "new")])
        page, total, exact = answers[label]["new"]
        same = "yes" if answers[label]["base"] == answers[label]["new"] else "**NO**"
        rows.append(f"| {label} | {ms(statistics.median(o))} | {ms(o[int(0.95 * len(o)) - 1])}"
                    f" | {ms(statistics.median(w))} | {ms(w[int(0.95 * len(w)) - 1])}"
                    f" | {statistics.median(o) / statistics.median(w):.1f}x"
                    f" | {total}{'' if exact else '+'} | {same} |")
    head = (
        f"# REST listing at {n:,} runs on PostgreSQL: `{base}` against the working tree\n\n"
        f"Generated by `python benchmarks/listing_ab.py --base {base}` on"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; 1-minute load average"
        f" {load[0]:.1f} at the start, {load[1]:.1f} at the end (a shared 2-core machine).\n"
        f"Page of 100 through `GET /nbtrace/api/runs` (bounded total), {reps} requests per"
        " version and listing after 3 warm-up rounds, the versions alternating.\n\n"
        f"| listing | {base} median | {base} p95 | new median | new p95 | {base}/new"
        " | total | same answer |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
    )
    return head + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    import case_listing
    from case_postgres import start_cluster

    import pgcluster

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--output", default=str(HERE / "LISTING_AB.md"))
    args = ap.parse_args(argv)
    assert pgcluster.find_pg_bin() is not None, "PostgreSQL binaries not found"
    tmp = Path(tempfile.mkdtemp(prefix="nbtrace-ab-"))
    cluster = start_cluster()
    procs = []
    try:
        old_src = _old_src(args.base, tmp / "base")
        urls = dict(zip(("base", "new"), _databases(cluster, args.runs, old_src)))
        servers = {}
        for name, src in (("base", old_src), ("new", ROOT / "src")):
            os.environ["PYTHONPATH"] = str(src)
            root = tmp / f"server-{name}"
            root.mkdir()
            proc, port, token = case_listing.start_jupyter(urls[name], root, root / "jupyter.log")
            procs.append(proc)
            servers[name] = case_listing.Http(port, {"Authorization": f"token {token}"})
        load0 = os.getloadavg()[0]
        times, answers = _measure(servers, args.reps)
        text = _report(times, answers, (load0, os.getloadavg()[0]), args.base, args.runs,
                       args.reps)
    finally:
        for p in procs:
            case_listing.stop(p)
        cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
