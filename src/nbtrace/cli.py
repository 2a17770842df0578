"""The ``nbtrace`` command: list, show, compare, re-execute, export and import runs.

Why thin: each verb parses its arguments, calls the store (or the rerun engine) and prints.
Every verb takes ``--db`` and ``--json`` (machine-readable output on stdout, nothing else).
Errors are one line on stderr (``nbtrace: error: ...``) with exit status 1; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import NBTraceError, UsageError, one_line
from .jsonutil import dumps

VERBS: dict[str, str] = {
    "runs": "list runs (filter, sort, limit)",
    "show": "show one run: params, metrics, cells, environment, git",
    "compare": "compare runs side by side, differences marked",
    "rerun": "re-execute a run in a fresh kernel and say whether it reproduced",
    "sweep": "re-execute a run once per parameter set of a grid, N kernels at a time",
    "drift": "what changed since a run: packages, data files, local modules, overridable params",
    "export": "export runs as JSON (lossless) or CSV, or into MLflow (--to mlflow+URI)",
    "import": "import runs exported as JSON, or from MLflow (mlflow+URI); importing twice adds"
    " nothing",
    "sync": "upload writes spooled while the team store was unreachable",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        help="store location: SQLite file or postgresql:// URL"
        " (default: $NBTRACE_DB, else the Jupyter data dir)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (also used by the docs test to list verbs).

    With ``verb``, only that verb's arguments are declared; every verb is still listed (in
    ``--help`` and in the error for an unknown one). Why: argparse makes a help formatter per
    argument, and declaring the ~60 arguments of every verb was a tenth of ``nbtrace runs``'s
    start.
    """
    parser = argparse.ArgumentParser(
        prog="nbtrace", description="Experiment traceability for Jupyter notebooks."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, add_arguments in _ARGUMENTS.items():
        p = sub.add_parser(name, help=VERBS[name], description=VERBS[name])
        if verb is None or verb == name:
            _common(p)
            add_arguments(p)
    return parser


def _runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", "-f", help='query, e.g. "params.alpha > 0.1 and metrics.mse < 3000"')
    p.add_argument(
        "--sort", "-s", help="sort key, e.g. -metrics.mse or started_at (default: newest first)"
    )
    p.add_argument(
        "--limit", "-n", type=int, default=50, help="at most N runs (0: all; default 50)"
    )
    p.add_argument("--offset", type=int, default=0, help="skip the first N runs")


def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--series", action="store_true", help="include every metric's steps")


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN", help="two to twenty run ids")


def _rerun_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (VALUE is JSON when it parses, else a string)",
    )
    p.add_argument("--kernel", help="kernel spec name (default: the recorded one)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="relative tolerance for within_tolerance (default 1e-9)",
    )
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    _trust_arg(p)
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="replay N times and judge the original against the run-to-run noise")
    p.add_argument("--recorded-modules", action="store_true",
                   help="replay with the recorded sources of the run's local modules")
    _gateway_args(p)


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument(
        "--grid", action="append", default=[], metavar="NAME=V1,V2",
        help="values of one parameter (each JSON when it parses, else a string); the sweep is"
        " the cross product of every --grid",
    )
    p.add_argument("--parallel", type=int, default=None,
                   help="kernels at once (default: the free cores; more on a gateway)")
    p.add_argument("--kernel", help="kernel spec name (default: the recorded one)")
    p.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    _trust_arg(p)
    _gateway_args(p)


def _trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust",
        action="store_true",
        help="re-execute a run recorded by another user or host, or imported"
        " (its recorded code runs as you: read it with `nbtrace show RUN` first)",
    )


def _drift_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--kernel", help="kernel spec name (default: the recorded one)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", "-f", help="export only matching runs")
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--output", "-o", help="file to write (default: stdout)")
    p.add_argument(
        "--to",
        metavar="mlflow+URI",
        help="export into an MLflow store instead (mlflow+sqlite:///mlflow.db,"
        " mlflow+http://host:5000, ...); idempotent by the nbtrace.run_id tag",
    )
    p.add_argument("--experiment", help="with --to: put every run in this MLflow experiment")


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        help="a JSON export ('-' for stdin), or mlflow+URI: mlflow+file:///path/mlruns,"
        " mlflow+sqlite:///path/mlflow.db, mlflow+postgresql://..., mlflow+http(s)://host:port",
    )
    p.add_argument("--experiment", help="from MLflow: import only this experiment")


def _no_args(p: argparse.ArgumentParser) -> None:
    """``sync`` takes only the common ``--db`` and ``--json``."""


def _gateway_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gateway-url", metavar="URL",
        help="start the kernel(s) on this Jupyter Kernel/Enterprise Gateway (jupyter_server's"
        " gateway client); the store must be one the gateway's kernels reach",
    )
    p.add_argument(
        "--gateway-token", metavar="T",
        help="the gateway's auth token (default: $JUPYTER_GATEWAY_AUTH_TOKEN)",
    )


#: Each verb's own arguments (besides ``--db`` and ``--json``), in ``--help`` order.
_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "runs": _runs_args,
    "show": _show_args,
    "compare": _compare_args,
    "rerun": _rerun_args,
    "sweep": _sweep_args,
    "drift": _drift_args,
    "export": _export_args,
    "import": _import_args,
    "sync": _no_args,
}


def _version() -> str:
    from . import __version__

    return f"nbtrace {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    words = _join_dash_values(list(sys.argv[1:] if argv is None else argv))
    verb = next((w for w in words if not w.startswith("-")), None)  # top options take no value
    parser = build_parser(verb if verb in VERBS else None)
    args = parser.parse_args(words)
    if not args.verb:
        parser.print_help()
        return 2
    handler: Callable[[argparse.Namespace], int] = HANDLERS[args.verb]
    try:
        return handler(args)
    except NBTraceError as exc:
        print(f"nbtrace: error: {one_line(exc, 500)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nbtrace: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug must still read as one line
        if os.environ.get("NBTRACE_DEBUG"):
            raise
        print(
            f"nbtrace: internal error: {type(exc).__name__}: {one_line(exc, 300)}"
            " (set NBTRACE_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _join_dash_values(argv: list[str]) -> list[str]:
    """``--sort -metrics.mse`` → ``--sort=-metrics.mse`` (a leading dash means descending,
    which argparse would otherwise read as an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--sort", "-s") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"--sort={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def _store(args: argparse.Namespace) -> Any:
    from .store.base import open_store

    return open_store(args.db)


def _warn(message: str) -> None:
    """A one-line warning on stderr (something left behind, not an error of the verb)."""
    print(f"nbtrace: warning: {one_line(message, 500)}", file=sys.stderr)


def _emit_json(obj: Any) -> None:
    sys.stdout.write(dumps(obj, indent=2) + "\n")


# ---------------------------------------------------------------------- verbs
def cmd_runs(args: argparse.Namespace) -> int:
    store = _store(args)
    limit = None if args.limit == 0 else args.limit
    runs, total = store.list_runs(
        filter=args.filter, sort=args.sort, limit=limit, offset=args.offset
    )
    if args.json:
        _emit_json({"runs": runs, "total": total})
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
            _clip(r["name"], 30),
            r["status"],
            (r["started_at"] or "")[:19].replace("T", " "),
            _dur(r["duration_s"]),
        ]
        + [_fmt(r["params"].get(k)) for k in pkeys]
        + [_fmt(r["metrics"].get(k)) for k in mkeys]
        for r in runs
    ]
    _table(header, rows)
    if total > len(runs):
        print(f"({len(runs)} of {total} runs; --limit 0 for all)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    run = store.get_run(args.run, series=args.series)
    if args.json:
        _emit_json(run)
        return 0
    out = print
    out(f"run {run['id']}  {_clip(run['name'], 80)}  [{run['status']}]")
    out(f"  experiment: {run['experiment'] or '-'}   user: {run['user']}@{run['host']}")
    out(
        f"  started: {run['started_at']}   ended: {run['ended_at'] or '-'}"
        f"   duration: {_dur(run['duration_s'])}"
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
                out(f"  {_clip(k, 60)} = {_fmt(v, 200)}")
    if run.get("series"):
        out("series:")
        for k, pts in run["series"].items():
            out(
                f"  {k}: "
                + ", ".join(f"{p['step']}:{_fmt(p['value'])}" for p in pts[:20])
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
            f"  {_clip(first[0] if first else '', 70)}"
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
            out(f"output of seq {o['seq']} [{o['fingerprint'][:12]}]: {_clip(o['excerpt'], 90)}")


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    store = _store(args)
    cmp = compare_runs(store, args.runs)
    if args.json:
        _emit_json(cmp)
        return 0
    ids = [r["id"] for r in cmp["runs"]]
    header = ["", *ids]
    rows: list[list[str]] = [["name", *[_clip(r["name"], 20) for r in cmp["runs"]]]]
    for p in cmp["params"]:
        rows.append(
            [
                ("* " if p["differs"] else "  ") + "params." + p["key"],
                *[_fmt(p["values"][i]) for i in ids],
            ]
        )
    for m in cmp["metrics"]:
        rows.append(
            [
                ("* " if m["differs"] else "  ") + "metrics." + m["key"],
                *[_fmt(m["values"][i]) + (" (best)" if m["best"] == i else "") for i in ids],
            ]
        )
    _table(header, rows)
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


def _host(args: argparse.Namespace) -> tuple[Any, Callable[[], None]]:
    """The gateway host asked for with ``--gateway-url`` (and its stop), else ``(None, no-op)``."""
    url = getattr(args, "gateway_url", None)
    if not url:
        return None, lambda: None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--gateway-url must be an http(s):// URL, not {one_line(url, 80)!r}")
    from .server.gateway import gateway_host

    return gateway_host(url, args.gateway_token)


def cmd_rerun(args: argparse.Namespace) -> int:
    host, stop = _host(args)
    try:
        return _rerun(args, host)
    finally:
        stop()


def _rerun(args: argparse.Namespace, host: Any) -> int:
    from .rerun import rerun_run
    from .rerun.trust import require_trust

    overrides = dict(parse_set(s) for s in args.set)
    store = _store(args)
    require_trust(store, args.run, args.trust)
    if not args.json and host is not None:
        print(f"environment drift: checked by the verdict (the kernel runs on {host.name})")
    elif not args.json:
        from .rerun.drift import drift, format_drift

        lines = format_drift(drift(store, args.run, kernel_name=args.kernel))
        print("environment drift since the run: " + ("none" if not lines else ""))
        for line in lines:
            print(f"  {line}")

    with _kernel_output_aside() as err:
        bar = _Progress(err, enabled=not args.json)
        result = rerun_run(
            store,
            args.run,
            overrides=overrides,
            kernel_name=args.kernel,
            tolerance=args.tolerance,
            timeout=args.timeout,
            progress=bar.update,
            host=host,
            repeat=args.repeat,
            recorded_modules=args.recorded_modules,
        )
        bar.close()
    if args.json:
        _emit_json({"run": result["run"], "verdict": result["verdict"]})
        return 0 if result["verdict"]["status"] != "failed" else 1
    from .rerun.report import verdict_lines

    v = result["verdict"]
    print(f"new run {result['run']}: {v['status']}")
    for line in verdict_lines(v):
        print(f"  {line}")
    if v.get("error"):
        print(f"  error: {one_line(v['error'], 300)}")
    print(
        "  code matches the recording"
        if v.get("code_matches")
        else "  code differs from the recording"
    )
    return 0 if v["status"] != "failed" else 1


def cmd_drift(args: argparse.Namespace) -> int:
    from .rerun.drift import drift, format_drift

    d = drift(_store(args), args.run, kernel_name=args.kernel)
    if args.json:
        _emit_json(d)
        return 0
    lines = format_drift(d)
    print("drift since the run: " + ("none" if not lines else ""))
    for line in lines:
        print(f"  {line}")
    return 0


class _Progress:
    """Re-execution progress on stderr: a bar redrawn in place on a terminal, else one line
    per cell (a CI log must not read ``cell 1 of 4cell 2 of 4``)."""

    def __init__(self, stream: Any, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.tty = enabled and _isatty(stream)
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = width * done // max(total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] cell {done} of {total}")
            self.drawn = True
        else:
            self.stream.write(f"cell {done} of {total}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


@contextmanager
def _kernel_output_aside() -> Iterator[Any]:
    """Run the block with file descriptor 2 pointing to a log file; yield the real stderr.

    Why: the replay kernel inherits the CLI's stderr and writes its own log lines there
    (``[IPKernelApp] WARNING | Kernel is running over TCP...``), which tell the user nothing.
    They go to ``<tmp>/nbtrace-rerun-kernel.log``; our progress and errors still reach the
    terminal through a duplicate of the original descriptor.
    """
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (some embedded interpreters): nothing to set aside
        yield sys.stderr
        return
    log_path = os.path.join(tempfile.gettempdir(), f"nbtrace-rerun-kernel-{os.getpid()}.log")
    real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        with open(log_path, "w") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield real
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        real.close()
        try:
            os.unlink(log_path)
        except OSError as exc:
            _warn(f"could not remove the replay kernel's log {log_path}: {exc.strerror}")


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["alpha=0.1,0.2", "l1_ratio=0,1"]`` → ``{"alpha": [0.1, 0.2], "l1_ratio": [0, 1]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        if not eq or not name.strip().isidentifier() or not raw.strip():
            raise UsageError(f"--grid takes NAME=V1,V2,..., got {one_line(item, 60)!r}")
        values = []
        for part in raw.split(","):
            try:
                values.append(json.loads(part))
            except ValueError:
                values.append(part)
        grid[name.strip()] = values
    if not grid:
        raise UsageError("a sweep needs at least one --grid NAME=V1,V2")
    return grid


def cmd_sweep(args: argparse.Namespace) -> int:
    from .rerun.sweep import run_sweep

    host, stop = _host(args)
    try:
        grid = parse_grid(args.grid)
        store = _store(args)
        with _kernel_output_aside() as err:

            def progress(done: int, total: int) -> None:
                if not args.json:
                    err.write(f"job {done} of {total} done\n")
                    err.flush()

            result = run_sweep(store, args.run, grid, parallel=args.parallel,
                               kernel_name=args.kernel, timeout=args.timeout, host=host,
                               progress=progress, trust=args.trust)
    finally:
        stop()
    if args.json:
        _emit_json(result)
    else:
        print(f"sweep {result['sweep']} of run {result['source_run']}:"
              f" {len(result['runs'])} run(s), {result['parallel']} at a time,"
              f" {result['seconds']:.1f} s (runs tagged sweep={result['sweep']})")
        names = list(grid)
        rows = [[_fmt(r["overrides"].get(n), 12) for n in names]
                + [r["run"] or "-", r["status"], _clip(r.get("error") or "", 60)]
                for r in result["results"]]
        _table([*names, "run", "verdict", "error"], rows)
    return 0 if all(r["status"] != "failed" for r in result["results"]) else 1


def parse_set(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` → (name, JSON value or the raw string)."""
    name, eq, raw = item.partition("=")
    if not eq or not name.strip().isidentifier():
        raise UsageError(f"--set takes NAME=VALUE, got {one_line(item, 60)!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name.strip(), value


def cmd_export(args: argparse.Namespace) -> int:
    if args.to:
        return _export_mlflow(args)
    if args.experiment:
        raise UsageError("--experiment goes with --to mlflow+URI")
    store = _store(args)
    if not args.output:
        _export(store, args, sys.stdout)
        return 0
    # Written to a temporary file beside the target and renamed over it only when complete:
    # an export that fails half-way (a corrupt page, a full disk) never leaves a truncated
    # file, nor destroys an earlier good one.
    import tempfile

    target = os.path.abspath(args.output)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".part", dir=os.path.dirname(target)
        )
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            _export(store, args, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError as exc:
            _warn(f"could not remove the partial export {tmp}: {exc.strerror}")
        raise
    return 0


def _export(store: Any, args: argparse.Namespace, stream: Any) -> None:
    """Write the export of ``args`` to ``stream`` (JSON lossless; CSV neutralised)."""
    if args.format == "json":
        stream.write('{"format": "nbtrace-export/1", "runs": [\n')
        first = True
        for doc in store.export_runs(args.filter):
            stream.write(("" if first else ",\n") + dumps(doc))
            first = False
        stream.write("\n]}\n")
    else:
        import csv

        from .api import flatten

        runs, _ = store.list_runs(filter=args.filter, limit=None, sort="started_at")

        flat = [flatten(r) for r in runs]
        cols: list[str] = []
        for row in flat:
            cols.extend(k for k in row if k not in cols)
        w = csv.DictWriter(stream, fieldnames=cols)
        w.writerow({c: neutralise_csv(c) for c in cols})
        for row in flat:
            w.writerow({k: _csv(v) for k, v in row.items()})


def _export_mlflow(args: argparse.Namespace) -> int:
    """``nbtrace export --to mlflow+URI``: the MLflow bridge's exporter."""
    from .mlflow_bridge.uri import mlflow_tracking_uri

    mlflow_tracking_uri(args.to)  # a clear error for a malformed URI before MLflow loads
    if args.output or args.format != "json":
        raise UsageError("--to mlflow+URI writes into MLflow: --output and --format do not apply")
    import logging

    logging.disable(logging.WARNING)  # MLflow's root-logger warnings come with tracebacks
    from .mlflow_bridge.exporter import export_mlflow
    from .mlflow_bridge.importer import terminal_progress

    summary = export_mlflow(
        _store(args),
        args.to,
        filter=args.filter,
        experiment=args.experiment,
        progress=None if args.json else terminal_progress(),
    )
    if args.json:
        _emit_json({"exported": summary.runs, "skipped": summary.skipped})
    else:
        print(summary.line(args.to))
    return 0


def _import_mlflow(args: argparse.Namespace) -> int:
    """``nbtrace import mlflow+URI``: the MLflow bridge's importer."""
    from .mlflow_bridge.uri import mlflow_tracking_uri

    mlflow_tracking_uri(args.file)
    import logging

    logging.disable(logging.WARNING)  # MLflow's root-logger warnings come with tracebacks
    from .mlflow_bridge.importer import import_mlflow, terminal_progress

    summary = import_mlflow(
        _store(args),
        args.file,
        experiment=args.experiment,
        progress=None if args.json else terminal_progress(),
    )
    if args.json:
        _emit_json(
            {
                "imported": summary.runs,
                "skipped": summary.skipped,
                "experiments": summary.experiments,
                "metric_values": summary.metric_values,
                "artifacts": summary.artifacts,
            }
        )
    else:
        print(summary.line(args.file))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .jsonutil import decode_float

    if args.file.startswith("mlflow+"):
        return _import_mlflow(args)
    if args.experiment:
        raise UsageError("--experiment goes with an mlflow+URI source")

    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        data = json.loads(text, parse_constant=decode_float)
    except ValueError as exc:
        raise UsageError(f"{args.file} is not JSON: {one_line(exc, 100)}") from None
    except RecursionError:
        raise UsageError(f"{args.file} is not an nbtrace export: nested too deeply") from None
    docs = data.get("runs") if isinstance(data, dict) and "runs" in data else data
    if not isinstance(docs, list):
        raise UsageError(f"{args.file} is not an nbtrace export")
    _check_import(docs)
    store = _store(args)
    added = sum(1 for d in docs if store.import_run(d))
    if args.json:
        _emit_json({"imported": added, "skipped": len(docs) - added})
    else:
        print(f"imported {added} run(s); {len(docs) - added} already present")
    return 0


def _check_import(docs: list[Any]) -> None:
    """Check every document before the first is written: a file is imported whole or not."""
    from .store.importdoc import check_document
    from .store.sql import RUN_COLUMNS

    for i, doc in enumerate(docs):
        try:
            check_document(doc, RUN_COLUMNS)
        except UsageError as exc:
            raise UsageError(f"document {i + 1} of {len(docs)}: {exc}") from None


def cmd_sync(args: argparse.Namespace) -> int:
    from .config import jupyter_data_dir
    from .store.importdoc import CheckedWrites
    from .writer import sync_spool

    store = _store(args)
    spool = jupyter_data_dir() / "nbtrace" / "spool"
    files, ops = sync_spool(CheckedWrites(store), spool, store.display_location)
    if args.json:
        _emit_json({"files": files, "writes": ops})
    else:
        print(f"uploaded {ops} spooled write(s) from {files} file(s)")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "runs": cmd_runs,
    "show": cmd_show,
    "compare": cmd_compare,
    "rerun": cmd_rerun,
    "sweep": cmd_sweep,
    "drift": cmd_drift,
    "export": cmd_export,
    "import": cmd_import,
    "sync": cmd_sync,
}


# ---------------------------------------------------------------------- formatting
def _clip(s: Any, n: int) -> str:
    return one_line("" if s is None else s, n)


def _fmt(v: Any, n: int = 24) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return _clip(v if isinstance(v, str) else json.dumps(v), n)


#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv(v: Any) -> Any:
    text = json.dumps(v) if isinstance(v, (dict, list)) else v
    return neutralise_csv(text) if isinstance(text, str) else text


def neutralise_csv(text: str) -> str:
    """``text`` made inert for spreadsheets: a cell starting with ``=``, ``+``, ``-``, ``@``,
    tab or CR gets a leading ``'`` (OWASP's rule), except a negative number such as ``-1.5``.

    Why: a tag ``=HYPERLINK("http://evil","x")`` exported verbatim becomes a live formula in
    whoever opens the file in Excel or LibreOffice; names and values here are anyone's text.
    """
    if not text.startswith(_FORMULA_START) or (text.startswith("-") and _is_number(text)):
        return text
    return "'" + text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1000:.0f}ms" if s < 1 else (f"{s:.1f}s" if s < 120 else f"{s / 60:.1f}m")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
