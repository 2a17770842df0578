"""The re-executing verbs: ``nbtrace rerun`` and ``sweep`` (progress, kernels' own output
set aside, a gateway host when asked)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import UsageError, one_line
from .common import clip, emit_json, fmt, store_of, table, warn


def _host(args: argparse.Namespace) -> tuple[Any, Callable[[], None]]:
    """The gateway host asked for with ``--gateway-url`` (and its stop), else ``(None, no-op)``."""
    url = getattr(args, "gateway_url", None)
    if not url:
        return None, lambda: None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--gateway-url must be an http(s):// URL, not {one_line(url, 80)!r}")
    from ..server.gateway import gateway_host

    return gateway_host(url, args.gateway_token)


def cmd_rerun(args: argparse.Namespace) -> int:
    host, stop = _host(args)
    try:
        return _rerun(args, host)
    finally:
        stop()


def _rerun(args: argparse.Namespace, host: Any) -> int:
    from ..rerun import rerun_run
    from ..rerun.trust import require_trust

    overrides = dict(parse_set(s) for s in args.set)
    store = store_of(args)
    require_trust(store, args.run, args.trust)
    if not args.json and host is not None:
        print(f"environment drift: checked by the verdict (the kernel runs on {host.name})")
    elif not args.json:
        from ..rerun.drift import drift, format_drift

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
        emit_json({"run": result["run"], "verdict": result["verdict"]})
        return 0 if result["verdict"]["status"] != "failed" else 1
    from ..rerun.report import verdict_lines

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
            warn(f"could not remove the replay kernel's log {log_path}: {exc.strerror}")


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
    from ..rerun.sweep import run_sweep

    host, stop = _host(args)
    try:
        grid = parse_grid(args.grid)
        store = store_of(args)
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
        emit_json(result)
    else:
        print(f"sweep {result['sweep']} of run {result['source_run']}:"
              f" {len(result['runs'])} run(s), {result['parallel']} at a time,"
              f" {result['seconds']:.1f} s (runs tagged sweep={result['sweep']})")
        names = list(grid)
        rows = [[fmt(r["overrides"].get(n), 12) for n in names]
                + [r["run"] or "-", r["status"], clip(r.get("error") or "", 60)]
                for r in result["results"]]
        table([*names, "run", "verdict", "error"], rows)
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
