"""The reading verbs: ``nbtrace runs``, ``show``, ``compare`` and ``drift``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .common import clip, dur, emit_json, fmt, store_of, table


def cmd_runs(args: argparse.Namespace) -> int:
    store = store_of(args)
    limit = None if args.limit == 0 else args.limit
    runs, total = store.list_runs(
        filter=args.filter, sort=args.sort, limit=limit, offset=args.offset
    )
    if args.json:
        emit_json({"runs": runs, "total": total})
        return 0
    if not runs:
        print("no runs" + (" match the filter" if args.filter else ""))
        return 0
    pkeys = sorted({k for r in runs for k in r["params"]})[:6]
    mkeys = sorted({k for r in runs for k in r["metrics"]})[:6]
    header = ["id", "name", "status", "started", "dur"] + pkeys + mkeys
    rows = [
        [
            r["id"],
            clip(r["name"], 30),
            r["status"],
            (r["started_at"] or "")[:19].replace("T", " "),
            dur(r["duration_s"]),
        ]
        + [fmt(r["params"].get(k)) for k in pkeys]
        + [fmt(r["metrics"].get(k)) for k in mkeys]
        for r in runs
    ]
    table(header, rows)
    if total > len(runs):
        print(f"({len(runs)} of {total} runs; --limit 0 for all)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = store_of(args)
    run = store.get_run(args.run, series=args.series)
    if args.json:
        emit_json(run)
        return 0
    out = print
    out(f"run {run['id']}  {clip(run['name'], 80)}  [{run['status']}]")
    out(f"  experiment: {run['experiment'] or '-'}   user: {run['user']}@{run['host']}")
    out(
        f"  started: {run['started_at']}   ended: {run['ended_at'] or '-'}"
        f"   duration: {dur(run['duration_s'])}"
    )
    if run["parent"]:
        v = run.get("verdict") or {}
        out(f"  re-executes: {run['parent']}   verdict: {v.get('status', '-')}")
    for title, group in (
        ("params", run["params"]),
        ("metrics", run["metrics"]),
        ("tags", run["tags"]),
    ):
        if group:
            out(f"{title}:")
            for k, v in sorted(group.items()):
                out(f"  {clip(k, 60)} = {fmt(v, 200)}")
    if run.get("series"):
        out("series:")
        for k, pts in run["series"].items():
            out(
                f"  {k}: "
                + ", ".join(f"{p['step']}:{fmt(p['value'])}" for p in pts[:20])
                + (" ..." if len(pts) > 20 else "")
            )
    res = run.get("resources") or {}
    if res:
        out(
            f"resources: wall {res.get('wall_s', 0):.3f} s, cpu {res.get('cpu_s', 0):.3f} s,"
            f" peak rss {(res.get('peak_rss_bytes') or 0) / 2**20:.1f} MiB"
        )
    env = run.get("environment") or {}
    out("environment:")
    out(f"  python {env.get('python')} ({env.get('executable')})")
    out(
        f"  {env.get('platform')} on {env.get('hostname')}: {env.get('cpu')},"
        f" {env.get('cpu_count')} cpus, {(env.get('memory_bytes') or 0) / 2**30:.1f} GiB,"
        f" gpus: {len(env.get('gpus') or [])}"
    )
    out(
        f"  {len(env.get('packages') or {})} packages installed; imported: "
        + ", ".join(
            f"{k} {v or ''}".strip() for k, v in sorted((env.get("imported") or {}).items())
        )
    )
    git = run.get("git")
    if git:
        out(
            f"git: {git.get('commit')} on {git.get('branch') or '(detached)'}"
            f"{' (dirty)' if git.get('dirty') else ''}  remote: {git.get('remote') or '-'}"
        )
    else:
        out("git: not a git work tree")
    nb = run.get("notebook") or {}
    out(f"notebook: {nb.get('path') or '-'} ({len(nb.get('cells') or [])} code cells saved)")
    out("cells (execution order):")
    for c in run["cells"]:
        first = (c["source"] or "").strip().splitlines()[:1]
        mark = ("*" if c["in_run"] else " ") + ("!" if c["error"] else " ")
        out(
            f" {mark}{c['seq']:>4} [{c['execution_count'] or ' '}] {c['sha256'][:12]}"
            f"  {clip(first[0] if first else '', 70)}"
        )
    out("  (* inside the run, ! raised)")
    for a in run["artifacts"]:
        out(f"artifact: {a['name']} {a['size']} bytes sha256 {a['sha256'][:12]}")
    for i in run["inputs"]:
        how = "declared" if i.get("declared", True) else "read"
        part = ", first and last MiB" if i.get("partial") else ""
        out(f"input ({how}): {i['path']} {i['size']} bytes sha256 {i['sha256'][:12]}{part}")
    _show_capture(run, out)
    return 0


def _show_capture(run: dict[str, Any], out: Callable[[str], None]) -> None:
    """The dependency and output capture of issue 10: modules, determinism, cell outputs."""
    for m in run.get("modules") or []:
        out(f"module: {m['path']} {m['size']} bytes sha256 {str(m['sha256'])[:12]}"
            + ("" if m.get("stored") else " (source not stored)"))
    det = run.get("determinism") or {}
    env = {k: v for k, v in (det.get("env") or {}).items() if v is not None}
    if det:
        out("determinism: " + (", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "-")
            + "".join(f"; {k} {v}" for k, v in sorted((det.get("torch") or {}).items())))
    for o in run.get("outputs") or []:
        if o.get("excerpt"):
            out(f"output of seq {o['seq']} [{o['fingerprint'][:12]}]: {clip(o['excerpt'], 90)}")


def cmd_compare(args: argparse.Namespace) -> int:
    from ..compare import compare_runs

    store = store_of(args)
    cmp = compare_runs(store, args.runs)
    if args.json:
        emit_json(cmp)
        return 0
    ids = [r["id"] for r in cmp["runs"]]
    header = ["", *ids]
    rows: list[list[str]] = [["name", *[clip(r["name"], 20) for r in cmp["runs"]]]]
    for p in cmp["params"]:
        rows.append(
            [
                ("* " if p["differs"] else "  ") + "params." + p["key"],
                *[fmt(p["values"][i]) for i in ids],
            ]
        )
    for m in cmp["metrics"]:
        rows.append(
            [
                ("* " if m["differs"] else "  ") + "metrics." + m["key"],
                *[fmt(m["values"][i]) + (" (best)" if m["best"] == i else "") for i in ids],
            ]
        )
    table(header, rows)
    for rid, diff in cmp["code"]["diffs"].items():
        changed = [d for d in diff if d["op"] != "equal"]
        print(
            f"code {ids[0]} -> {rid}: " + (f"{len(changed)} cell(s) differ" if changed else "same")
        )
        for d in changed:
            print(f"  {d['op']}")
            for line in d["diff"].splitlines()[2:12]:
                print("    " + line)
    env = cmp["environment"]
    print("environment: " + ("differs" if env["differs"] else "same"))
    for p in env["packages"][:30]:
        print(f"  {p['name']}: " + "  ".join(str(p["values"][i]) for i in ids))
    print("(* marks a difference)")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from ..rerun.drift import drift, format_drift

    d = drift(store_of(args), args.run, kernel_name=args.kernel)
    if args.json:
        emit_json(d)
        return 0
    lines = format_drift(d)
    print("drift since the run: " + ("none" if not lines else ""))
    for line in lines:
        print(f"  {line}")
    return 0
