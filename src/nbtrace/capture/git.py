"""The git state of the notebook's work tree: commit, branch, dirty flag, diff, remote.

Why the ``git`` command rather than reading ``.git`` ourselves: packed refs, worktrees,
submodules, sha256 repositories, index extensions and ``includeIf`` configs are git's business.
The cost is kept low instead: one ``git status --porcelain=v2 --branch`` gives commit, branch and
dirty flag, the remote comes from one ``git config`` run alongside it, and the diff runs only when
the tree is dirty. Every call runs with optional locks off, so capturing never takes
``index.lock`` from under the user's own git commands, and never prompts for credentials.

Nothing here raises: a path outside a work tree, a missing ``git``, a broken repository or a
timeout give ``None`` (or leave out the part that failed).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from typing import Any

from nbtrace.capture.redact import redact_value

#: Largest diff recorded, in bytes; the rest is replaced by :data:`TRUNCATION_MARKER`.
DIFF_LIMIT = 256 * 1024
TRUNCATION_MARKER = f"\n[... diff truncated at {DIFF_LIMIT} bytes ...]\n"
#: Seconds any one git command may take.
TIMEOUT = 5.0

_GIT_ENV_OVERRIDES = {
    "GIT_OPTIONAL_LOCKS": "0",  # status must not refresh (and lock) the user's index
    "GIT_TERMINAL_PROMPT": "0",  # never wait for a password
    "GIT_PAGER": "cat",
    "LC_ALL": "C",  # stable, parseable messages
}


@functools.lru_cache(maxsize=1)
def _git_executable() -> str | None:
    return shutil.which("git")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(_GIT_ENV_OVERRIDES)
    return env


def _start(git: str, cwd: str, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [git, "--no-optional-locks", *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _finish(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> bytes | None:
    """stdout of ``proc`` when it exits 0 within ``timeout``, else None (and it is killed)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def _read_capped(git: str, cwd: str, args: list[str], limit: int) -> tuple[bytes, bool] | None:
    """Up to ``limit`` bytes of a command's stdout and whether there was more.

    Why not ``communicate``: a diff of a tree with a 2 GB tracked data file must not be held in
    memory only to be cut; the process is killed once the cap is reached.
    """
    try:
        proc = _start(git, cwd, args)
    except OSError:
        return None
    timer = threading.Timer(TIMEOUT, proc.kill)
    timer.daemon = True
    timer.start()
    try:
        assert proc.stdout is not None
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        truncated = size > limit
        if truncated:
            proc.kill()
        proc.stdout.close()
        proc.wait()
    finally:
        timer.cancel()
    if not truncated and proc.returncode != 0:
        return None
    return b"".join(chunks)[: limit + 1], truncated


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _parse_status(text: str) -> dict[str, Any]:
    """Commit, branch and dirty flag from ``git status --porcelain=v2 --branch`` output."""
    commit = branch = None
    dirty = False
    for line in text.splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid ") :].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head ") :].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True  # "1 ", "2 " (changed, renamed) or "u " (unmerged) entries
    return {"commit": commit, "branch": branch, "dirty": dirty}


def _pick_remote(text: str) -> str | None:
    """The URL of ``origin``, else of the first remote, from ``git config --get-regexp``."""
    remotes: list[tuple[str, str]] = []
    for line in text.splitlines():
        key, _, url = line.partition(" ")
        name = key[len("remote.") : -len(".url")]
        if url:
            remotes.append((name, url.strip()))
    for name, url in remotes:
        if name == "origin":
            return url
    return remotes[0][1] if remotes else None


def _work_dir(path: str) -> str | None:
    """The directory to run git in: ``path`` itself or, for a file, its directory."""
    if os.path.isdir(path):
        return path
    parent = os.path.dirname(os.path.abspath(path))
    return parent if os.path.isdir(parent) else None


def _diff(git: str, cwd: str, has_commit: bool) -> str:
    """``git diff HEAD`` (tracked files, staged and not), capped at :data:`DIFF_LIMIT` bytes."""
    common = ["--no-color", "--no-ext-diff", "--no-textconv"]
    if has_commit:
        runs = [["diff", "HEAD", *common]]
    else:  # no HEAD yet: staged additions, then unstaged edits of them
        runs = [["diff", "--cached", *common], ["diff", *common]]
    data = b""
    truncated = False
    for args in runs:
        got = _read_capped(git, cwd, args, DIFF_LIMIT - len(data))
        if got is None:
            continue
        data += got[0]
        if got[1] or len(data) > DIFF_LIMIT:
            truncated = True
            break
    if truncated:
        return _decode(data[:DIFF_LIMIT]) + TRUNCATION_MARKER
    return _decode(data)


def git_state(path: str) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty", "diff", "remote"}`` of the work tree holding ``path``.

    ``commit`` is None in a repository without commits, ``branch`` None on a detached HEAD,
    ``dirty`` concerns tracked files only (untracked files are not part of the code that ran),
    ``diff`` is ``git diff HEAD`` ("" when clean, or when the diff failed or timed out) capped
    at 256 KiB with a marker, ``remote``
    is ``origin``'s URL (else the first remote's) without credentials, or None. Returns None
    when ``path`` is not inside a work tree or git is unavailable; never raises.
    """
    try:
        git = _git_executable()
        cwd = _work_dir(os.fspath(path))
        if git is None or cwd is None:
            return None
        # Both commands run at once: the wall time is one git start-up, not two.
        status = _start(git, cwd, ["status", "--porcelain=v2", "--branch", "--untracked-files=no"])
        config = _start(git, cwd, ["config", "--get-regexp", r"^remote\..*\.url$"])
        status_out = _finish(status)
        config_out = _finish(config)  # exit code 1 when there is no remote
        if status_out is None:
            return None  # not a work tree (or inside .git, or a bare repo), or git failed
        state = _parse_status(_decode(status_out))
        state["diff"] = _diff(git, cwd, state["commit"] is not None) if state["dirty"] else ""
        remote = _pick_remote(_decode(config_out)) if config_out else None
        state["remote"] = redact_value(remote) if remote else None
        return state
    except Exception:  # noqa: BLE001 - git state is best effort; a run must not fail for it
        return None
