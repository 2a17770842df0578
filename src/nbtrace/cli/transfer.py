"""The moving verbs: ``nbtrace export`` (JSON, CSV, MLflow), ``import`` and ``sync``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..errors import UsageError, one_line
from ..jsonutil import dumps
from .common import emit_json, store_of, warn


def cmd_export(args: argparse.Namespace) -> int:
    if args.to:
        return _export_mlflow(args)
    if args.experiment:
        raise UsageError("--experiment goes with --to mlflow+URI")
    store = store_of(args)
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
            warn(f"could not remove the partial export {tmp}: {exc.strerror}")
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

        from ..api import flatten

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
    from ..mlflow_bridge.uri import mlflow_tracking_uri

    mlflow_tracking_uri(args.to)  # a clear error for a malformed URI before MLflow loads
    if args.output or args.format != "json":
        raise UsageError("--to mlflow+URI writes into MLflow: --output and --format do not apply")
    import logging

    logging.disable(logging.WARNING)  # MLflow's root-logger warnings come with tracebacks
    from ..mlflow_bridge.exporter import export_mlflow
    from ..mlflow_bridge.importer import terminal_progress

    summary = export_mlflow(
        store_of(args),
        args.to,
        filter=args.filter,
        experiment=args.experiment,
        progress=None if args.json else terminal_progress(),
    )
    if args.json:
        emit_json({"exported": summary.runs, "skipped": summary.skipped})
    else:
        print(summary.line(args.to))
    return 0


def _import_mlflow(args: argparse.Namespace) -> int:
    """``nbtrace import mlflow+URI``: the MLflow bridge's importer."""
    from ..mlflow_bridge.uri import mlflow_tracking_uri

    mlflow_tracking_uri(args.file)
    import logging

    logging.disable(logging.WARNING)  # MLflow's root-logger warnings come with tracebacks
    from ..mlflow_bridge.importer import import_mlflow, terminal_progress

    summary = import_mlflow(
        store_of(args),
        args.file,
        experiment=args.experiment,
        progress=None if args.json else terminal_progress(),
    )
    if args.json:
        emit_json(
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
    from ..jsonutil import decode_float

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
    store = store_of(args)
    added = sum(1 for d in docs if store.import_run(d))
    if args.json:
        emit_json({"imported": added, "skipped": len(docs) - added})
    else:
        print(f"imported {added} run(s); {len(docs) - added} already present")
    return 0


def _check_import(docs: list[Any]) -> None:
    """Check every document before the first is written: a file is imported whole or not."""
    from ..store.importdoc import check_document
    from ..store.schema import RUN_COLUMNS

    for i, doc in enumerate(docs):
        try:
            check_document(doc, RUN_COLUMNS)
        except UsageError as exc:
            raise UsageError(f"document {i + 1} of {len(docs)}: {exc}") from None


def cmd_sync(args: argparse.Namespace) -> int:
    from ..config import jupyter_data_dir
    from ..store.importdoc import CheckedWrites
    from ..writer import sync_spool

    store = store_of(args)
    spool = jupyter_data_dir() / "nbtrace" / "spool"
    files, ops = sync_spool(CheckedWrites(store), spool, store.display_location)
    if args.json:
        emit_json({"files": files, "writes": ops})
    else:
        print(f"uploaded {ops} spooled write(s) from {files} file(s)")
    return 0


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
