"""Environment drift: what differs between a run's recorded environment and the kernel that
would re-execute it, known before anything runs.

Why ask the kernel's interpreter rather than this process: the server (or CLI) may run in one
environment and the kernel in another; only the kernel's interpreter knows what the replay will
import. One subprocess reading distribution metadata costs ~100 ms, far less than a kernel.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError, one_line
from ..store.base import Store
from .replay import resolve_kernel, spec_executable

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0

# Runs in the kernel's interpreter. Prefers nbtrace's own capture (what a run records); falls
# back to importlib.metadata when nbtrace is not installed there (then the replay cannot record
# anything either, which the result says).
_PROBE = r"""
import json, platform, re, sys
try:
    from nbtrace.capture.environment import installed_packages, system_info
    info = system_info()
    out = {"python": info["python"], "platform": info["platform"],
           "executable": info["executable"], "packages": installed_packages(), "nbtrace": True}
except Exception:
    import importlib.metadata as md
    pk = {}
    for d in md.distributions():
        name = d.metadata["Name"]
        if name:
            pk.setdefault(re.sub(r"[-_.]+", "-", name).lower(), d.version)
    out = {"python": platform.python_version(), "platform": platform.platform(),
           "executable": sys.executable, "packages": pk, "nbtrace": False}
sys.stdout.write(json.dumps(out))
"""


def probe_interpreter(executable: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Python version, platform and installed packages of another interpreter."""
    penv = dict(os.environ)
    penv.update(env or {})
    penv.pop("NBTRACE_REPLAY", None)
    try:
        proc = subprocess.run(  # noqa: S603 - the kernelspec's own interpreter, no shell
            [executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=penv,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot inspect the kernel's interpreter {executable}: {exc}") from None
    if proc.returncode != 0:
        raise UsageError(
            f"cannot inspect the kernel's interpreter {executable}:"
            f" {one_line(last_line(proc.stderr, f'exit status {proc.returncode}'), 200)}"
        )
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise UsageError(f"the kernel's interpreter {executable} gave no answer") from None


def last_line(text: str, default: str) -> str:
    """The last non-empty line of ``text`` (an exception's message), else ``default``."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else default


def packages_drift(recorded: Mapping[str, str], current: Mapping[str, str]) -> dict[str, Any]:
    """Packages changed, added (in the kernel only) and removed (recorded only): the
    :func:`nbtrace.compare.packages_diff` sets, spelled as recorded/current."""
    from ..compare import packages_diff

    d = packages_diff(dict(recorded), dict(current))
    return {
        "changed": [{"name": c["name"], "recorded": c["old"], "current": c["new"]}
                    for c in d["changed"]],
        "added": [{"name": c["name"], "current": c["version"]} for c in d["added"]],
        "removed": [{"name": c["name"], "recorded": c["version"]} for c in d["removed"]],
    }


def environment_drift(recorded_env: Mapping[str, Any], current: Mapping[str, Any],
                      kernel_name: str) -> dict[str, Any]:
    """The drift object from a recorded environment and a probe result."""

    def pair(key: str) -> dict[str, Any] | None:
        a, b = recorded_env.get(key), current.get(key)
        return None if a == b else {"recorded": a, "current": b}

    packages = packages_drift(recorded_env.get("packages") or {}, current.get("packages") or {})
    return {
        "kernel_name": kernel_name,
        "executable": current.get("executable"),
        "python": pair("python"),
        "platform": pair("platform"),
        "packages": packages,
        "nbtrace_installed": bool(current.get("nbtrace")),
        "differs": bool(
            pair("python") or pair("platform") or any(packages[k] for k in packages)
        ),
    }


def drift(
    store: Store, ref: str, kernel_name: str | None = None, kernel_spec_manager: Any = None,
    host: Any = None,
    root_dir: str | None = None,
) -> dict[str, Any]:
    """What differs between run ``ref``'s recorded environment and the kernel that would re-run
    it (``kernel_name``, else the one :func:`rerun_run` would pick). ``root_dir`` (the server's
    root) limits which files' contents may appear in module diffs.

    On a gateway (``host.remote``) the kernel's interpreter lives on another machine and cannot
    be probed from here without starting a kernel: the answer says so (``"remote"``) and lists
    no differences; the verdict compares the environments once the replay has run.
    """
    run = store.get_run(ref)
    name, spec = resolve_kernel(run, kernel_name, kernel_spec_manager, host)
    if host is not None and getattr(host, "remote", False):
        out = environment_drift(run.get("environment") or {}, {}, name)
        out.update(
            executable=None, python=None, platform=None, differs=False,
            packages={"changed": [], "added": [], "removed": []}, nbtrace_installed=True,
            remote=str(getattr(host, "name", "gateway")),
        )
    else:
        exe = spec_executable(list(spec.argv))
        if not exe:
            raise UsageError(f"the kernel {name!r} has no command to inspect")
        current = probe_interpreter(exe, getattr(spec, "env", None) or {})
        out = environment_drift(run.get("environment") or {}, current, name)
    out.update(files_drift(store, run, root_dir))
    out["differs"] = bool(out["differs"] or out["inputs"] or out["modules"])
    return out


def files_drift(store: Store, run: Mapping[str, Any],
                root_dir: str | None = None) -> dict[str, Any]:
    """Data files and local modules that changed or went missing since the run, and which
    parameters an override can change (for the dialog).

    ``inputs`` / ``modules``: ``[{"path", "recorded", "current", "declared"?, "diff"?}]``, with
    ``current`` None for a file that is gone. Files are hashed as the kernel hashes them (big
    ones partially, so a recorded path naming a huge file costs 2 MiB of reading). Why the
    ``root_dir`` check: a run may come from an import, and its recorded module paths could name
    any file the server can read; through the server, a diff shows only files below its root.
    """
    from ..capture.deps import MAX_SOURCE, file_fingerprint
    from .causes import source_diff
    from .overrides import overridability
    from .replay import is_within

    inputs = []
    for item in run.get("inputs") or []:
        now = file_fingerprint(item["path"])
        cur = now["sha256"] if now else None
        if cur != item.get("sha256"):
            inputs.append({"path": item["path"], "recorded": item.get("sha256"), "current": cur,
                           "declared": bool(item.get("declared"))})
    modules = []
    for m in run.get("modules") or []:
        now = file_fingerprint(m["path"])
        cur = now["sha256"] if now else None
        if cur != m.get("sha256"):
            entry: dict[str, Any] = {"path": m["path"], "recorded": m.get("sha256"),
                                     "current": cur}
            readable = root_dir is None or is_within(m["path"], root_dir)
            if cur is not None and m.get("stored") and readable and now["size"] <= MAX_SOURCE:
                try:
                    with open(m["path"], encoding="utf-8") as f:
                        entry["diff"] = source_diff(store.source(m["sha256"]), f.read(),
                                                    m["path"])
                except (OSError, UnicodeDecodeError) as exc:  # no diff: the hashes still say it
                    log.debug("nbtrace: no diff for %s: %s", m["path"], exc)
            modules.append(entry)
    pos = run.get("position") or {}
    last = pos.get("last_seq")
    cells = [c for c in run.get("cells") or [] if last is None or c["seq"] <= last]
    return {"inputs": inputs, "modules": modules,
            "parameters": overridability(cells, run.get("params") or {})}


def _short(f: Mapping[str, Any]) -> str:
    return str(f.get("recorded"))[:12]


def format_drift(d: Mapping[str, Any], limit: int = 20) -> list[str]:
    """Human lines for the CLI: ``numpy 1.26 → 2.1`` and the like (empty when nothing differs)."""
    lines: list[str] = []
    if d.get("python"):
        lines.append(f"python {d['python']['recorded']} → {d['python']['current']}")
    if d.get("platform"):
        lines.append(f"platform {d['platform']['recorded']} → {d['platform']['current']}")
    p = d.get("packages") or {}
    items = (
        [f"{c['name']} {c['recorded']} → {c['current']}" for c in p.get("changed", [])]
        + [f"{c['name']} (not recorded) → {c['current']}" for c in p.get("added", [])]
        + [f"{c['name']} {c['recorded']} → (not installed)" for c in p.get("removed", [])]
    )
    lines.extend(items[:limit])
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit} more package differences")
    for kind in ("inputs", "modules"):
        for f in d.get(kind) or []:
            what = "data file" if kind == "inputs" else "module"
            if f.get("current") is None:
                lines.append(f"{what} {f['path']} is missing (recorded sha {_short(f)})")
            else:
                lines.append(f"{what} {f['path']} changed: sha {_short(f)} → "
                             f"{str(f['current'])[:12]}")
    for name, p in sorted((d.get("parameters") or {}).items()):
        if not p.get("overridable"):
            lines.append(f"parameter {name} is not overridable: {p.get('reason')}")
    if d.get("nbtrace_installed") is False:
        lines.append(f"nbtrace is not installed for kernel {d.get('kernel_name')}")
    return lines
