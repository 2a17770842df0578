"""The ``nbtrace`` command: list, show, compare, re-execute, export and import runs.

Why thin: each verb parses its arguments, calls the store (or the rerun engine) and prints.
Every verb takes ``--db`` and ``--json`` (machine-readable output on stdout, nothing else).
Errors are one line on stderr (``nbtrace: error: ...``) with exit status 1; never a traceback.

This module holds the parser and the entry point; the verbs live by what they do:
:mod:`.listing` (runs, show, compare, drift), :mod:`.replay` (rerun, sweep) and
:mod:`.transfer` (export, import, sync), over :mod:`.common`. Only the chosen verb's module is
imported, so ``nbtrace runs`` does not load the re-execution or MLflow code paths.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from ..errors import NBTraceError, one_line

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
    from .. import __version__

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
    try:
        return handler(args.verb)(args)
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


#: Where each verb's function lives (module of this package, function), imported on use.
HANDLERS: dict[str, tuple[str, str]] = {
    "runs": ("listing", "cmd_runs"),
    "show": ("listing", "cmd_show"),
    "compare": ("listing", "cmd_compare"),
    "rerun": ("replay", "cmd_rerun"),
    "sweep": ("replay", "cmd_sweep"),
    "drift": ("listing", "cmd_drift"),
    "export": ("transfer", "cmd_export"),
    "import": ("transfer", "cmd_import"),
    "sync": ("transfer", "cmd_sync"),
}


def handler(verb: str) -> Callable[[argparse.Namespace], int]:
    """The function of ``verb`` (its module imported now)."""
    module, name = HANDLERS[verb]
    fn: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f".{module}", __name__), name
    )
    return fn
