#!/usr/bin/env python3
"""Run every nbtrace-vs-MLflow benchmark on this machine and write ``benchmarks/RESULTS.md``.

    python benchmarks/run_all.py            # the full suite (~10 min on 2 cores)
    python benchmarks/run_all.py --quick    # a fast smoke run (~3 min)
    python benchmarks/run_all.py --only listing,notebook   # some cases (RESULTS.md untouched
                                                           # unless --write)

Run it with any Python >= 3.10 (the dev venv's or the system's): it builds its own virtual
environment, ``benchmarks/.work/venv``, with nbtrace installed editable plus MLflow and what the
cases need, and re-runs itself there. MLflow therefore never enters the dev/test venv, and both
systems are measured in the same interpreter, side by side, alternately.

Cases (see each ``case_*.py`` for what exactly is timed):
  warm      1 log_metric (per call, cell-end flush, 10,000-step loop), 2 log_param(s),
            3 run start+end (later runs)
  fresh     3 run start+end (first run of a kernel), 6 %load_ext nbtrace vs import mlflow
  listing   4 listing/filtering 1,000 and 10,000 runs: REST, nbtrace.runs(), mlflow.search_runs
  notebook  5 the 330-run ElasticNet notebook untracked / nbtrace / MLflow, 7 store size per run
  postgres  log_metric, run start+end, filtered listing on PostgreSQL (both systems)
  startup   9 import nbtrace, `nbtrace runs` CLI start, opening a 100,000-run store
  sidebar   8 the JupyterLab sidebar (benchmarks/sidebar.py, when present)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".work" / "venv"
# What the cases need besides nbtrace and requirements.txt (MLflow, psycopg).
EXTRA = ["jupyterlab", "nbclient", "ipykernel", "scikit-learn", "pandas", "pytest"]
CASES = ("warm", "fresh", "listing", "notebook", "postgres", "startup", "sidebar")


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _stamp() -> str:
    h = hashlib.sha256()
    for p in (HERE / "requirements.txt", ROOT / "pyproject.toml"):
        h.update(p.read_bytes())
    h.update(" ".join(EXTRA).encode())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_venv() -> None:
    """Create/refresh ``benchmarks/.work/venv`` (a clean venv; skipped when up to date)."""
    stamp_file = VENV / ".bench-stamp"
    stamp = _stamp()
    if venv_python().exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    print(f"building the benchmark venv {VENV} (once; ~2 min)", file=sys.stderr, flush=True)
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    env = dict(os.environ)
    # The editable install needs no front-end build: the sidebar case runs in the dev venv.
    env["SKIP_JUPYTER_BUILDER"] = "1"
    pip = [str(venv_python()), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, env=env)
    subprocess.run(
        [*pip, "-e", str(ROOT), "-r", str(HERE / "requirements.txt"), *EXTRA],
        check=True,
        env=env,
    )
    stamp_file.write_text(stamp)


class Config:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.reps = 2 if quick else 5
        self.warmup = 1


def run_sidebar(cfg: Config) -> tuple[list, str]:
    """Case 8: ``benchmarks/sidebar.py`` (the front end's own script), run with the dev venv's
    Python (where the labextension is built) when it exists; its output is included as is."""
    script = HERE / "sidebar.py"
    if not script.exists():
        return [], "_`benchmarks/sidebar.py` is not present yet: case 8 not measured._\n"
    dev = ROOT / ".venv" / "bin" / "python"
    py = str(dev) if dev.exists() else sys.executable
    cmd = [py, str(script)] + (["--quick"] if cfg.quick else [])
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    text = proc.stdout.strip()
    if proc.returncode != 0:
        tail = proc.stderr.strip()[-2000:]
        text += f"\n\n_sidebar.py exited with {proc.returncode}:_\n\n```\n{tail}\n```"
    print(text)
    return [], (f"Command: `{' '.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}`"
                f"\n\n{text}\n")


def run_case(name: str, cfg: Config) -> tuple[list, str]:
    sys.path.insert(0, str(HERE))
    if name == "warm":
        import case_kernel

        return case_kernel.run_warm(cfg), ""
    if name == "fresh":
        import case_kernel

        return case_kernel.run_fresh(cfg), ""
    if name == "listing":
        import case_listing

        return case_listing.run(cfg)
    if name == "notebook":
        import case_notebook

        return case_notebook.run(cfg)
    if name == "postgres":
        import case_postgres

        return case_postgres.run(cfg)
    if name == "startup":
        import case_startup

        return case_startup.run(cfg)
    if name == "sidebar":
        return run_sidebar(cfg)
    raise SystemExit(f"unknown case {name!r} (known: {', '.join(CASES)})")


def source_case(case: str, label: str) -> str:
    """Which run_all case measured a row (rows carry their table's name, not their case's)."""
    if case == "pg":
        return "postgres"
    if case == "9 startup":
        return "startup"
    if case == "4 listing":
        return "listing"
    if case in ("5 notebook", "7 store size"):
        return "notebook"
    if case == "6 load" or (case == "3 run start+end" and "first run" in label):
        return "fresh"
    return "warm"


def _merged(path: Path, names: list[str], rows: list, texts: dict, errors: dict,
            loads: dict) -> tuple[list, dict, dict, dict]:
    """This run's cases, and the last run's figures for every other case."""
    from harness import Row

    old = json.loads(path.read_text())
    kept = [Row.from_json(r) for r in old.get("rows", [])
            if source_case(r["case"], r["label"]) not in names]
    others = lambda d: {k: v for k, v in d.items() if k not in names}  # noqa: E731
    return (
        kept + rows,
        {**others(old.get("texts", {})), **texts},
        {**others(old.get("errors", {})), **errors},
        {**{k: tuple(v) for k, v in others(old.get("loads", {})).items()}, **loads},
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, smaller sizes")
    ap.add_argument("--only", help=f"comma-separated cases among {', '.join(CASES)}")
    ap.add_argument("--write", action="store_true", help="write RESULTS.md even with --only")
    ap.add_argument("--output", default=str(HERE / "RESULTS.md"))
    ap.add_argument(
        "--merge", action="store_true",
        help="with --only: keep the other cases' figures from the last run"
        " (benchmarks/.work/results.json) and rewrite RESULTS.md with all of them",
    )
    args = ap.parse_args(argv)

    if not in_bench_venv():
        ensure_venv()
        return subprocess.run([str(venv_python()), str(Path(__file__).resolve()), *argv]).returncode

    sys.path.insert(0, str(HERE))
    from harness import loadavg, log, machine, table, wait_quiet
    from report import render

    # A pip-installed nbtrace has its bytecode compiled at install time, as MLflow has in this
    # venv; an editable install from a tree where PYTHONDONTWRITEBYTECODE is set would compile
    # nbtrace's sources in every kernel (~50 ms of %load_ext). Compile them once (into the
    # git-ignored __pycache__ folders) and let the benchmark's processes use the bytecode.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import compileall

    compileall.compile_dir(str(ROOT / "src" / "nbtrace"), quiet=1)
    cfg = Config(args.quick)
    names = [c.strip() for c in args.only.split(",")] if args.only else list(CASES)
    t_start = time.time()
    rows: list = []
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    loads: dict[str, tuple[float, float]] = {}
    for name in names:
        before = wait_quiet(1.0, 10 if cfg.quick else 30)
        log(f"=== case {name} (load average {before:.2f})")
        t0 = time.perf_counter()
        try:
            got, text = run_case(name, cfg)
        except Exception:  # noqa: BLE001 - one failing case must not lose the others
            errors[name] = traceback.format_exc()
            log(f"case {name} FAILED:\n{errors[name]}")
            continue
        loads[name] = (before, loadavg())
        rows += got
        if text:
            texts[name] = text
        if got:
            print(table(got), flush=True)
        log(f"case {name} took {time.perf_counter() - t0:.0f} s")
    elapsed = time.time() - t_start
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    if args.merge and (work / "results.json").exists():
        rows, texts, errors, loads = _merged(work / "results.json", names, rows, texts, errors,
                                             loads)
    (work / "results.json").write_text(
        json.dumps({"rows": [r.to_json() for r in rows], "texts": texts, "errors": errors,
                    "loads": loads},
                   indent=1)
    )
    if args.only and not (args.write or args.merge):
        log(f"done in {elapsed:.0f} s (RESULTS.md not rewritten: --only without --write)")
        return 1 if errors else 0
    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    if args.only:
        cmd += f" --only {args.only}" + (" --merge" if args.merge else "")
    Path(args.output).write_text(render(rows, texts, errors, loads, machine(), cmd, elapsed))
    log(f"done in {elapsed:.0f} s; wrote {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
