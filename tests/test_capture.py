"""Tests of nbtrace.capture: real files, real git repositories, real subprocesses."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import textwrap
import time
import types
import zipfile
from pathlib import Path

import pytest

from nbtrace import hashing
from nbtrace.capture import environment, git, notebook, redact, resources, seeds

PYTHON = sys.executable
SRC = str(Path(__file__).resolve().parents[1] / "src")


# --------------------------------------------------------------------------------------------
# hashing
# --------------------------------------------------------------------------------------------


def test_sha256_text_known_vector():
    assert hashing.sha256_text("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert hashing.sha256_text("é") == hashlib.sha256("é".encode()).hexdigest()


def test_sha256_file_streams_large_file(tmp_path):
    data = os.urandom(3 * (1 << 20) + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert hashing.sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hashing.sha256_file(str(empty)) == (hashlib.sha256(b"").hexdigest(), 0)
    with pytest.raises(OSError):
        hashing.sha256_file(tmp_path / "missing")


def test_stable_hash_ignores_key_order():
    a = {"numpy": "2.0", "pandas": "2.2", "nested": {"x": 1, "y": [1, 2]}}
    b = {"nested": {"y": [1, 2], "x": 1}, "pandas": "2.2", "numpy": "2.0"}
    assert hashing.stable_hash(a) == hashing.stable_hash(b)
    assert hashing.stable_hash(a) != hashing.stable_hash({**a, "numpy": "2.1"})
    with pytest.raises(TypeError):
        hashing.stable_hash({"s": {1, 2}})


# --------------------------------------------------------------------------------------------
# redact
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://user:s3cret@host/x.git", "https://host/x.git"),
        ("https://ghp_TOKEN123@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://user:p@ss@host:8443/x", "https://host:8443/x"),
        ("https://:token@host/x", "https://host/x"),
        ("http://u:pw@host", "http://host"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("ssh://git:pw@github.com/o/r.git", "ssh://github.com/o/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("postgresql://alice:pw@db:5432/runs", "postgresql://db:5432/runs"),
        (
            "primary https://a:b@one.example/x and mirror https://tok@two.example/y",
            "primary https://one.example/x and mirror https://two.example/y",
        ),
        ("https://host/path?email=me@example.com", "https://host/path?email=me@example.com"),
        ("contact me@example.com", "contact me@example.com"),
        ("", ""),
    ],
)
def test_strip_url_credentials(given, expected):
    assert redact.strip_url_credentials(given) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://alice:s3cret@db:5432/runs", "postgresql://alice:***@db:5432/runs"),
        ("postgres://alice@db/runs", "postgres://alice@db/runs"),
        ("postgresql://db/runs", "postgresql://db/runs"),
        (
            "postgresql://alice@db/runs?sslmode=require&password=s3cret",
            "postgresql://alice@db/runs?sslmode=require&password=***",
        ),
        (
            "host=db user=alice password=s3cret dbname=runs",
            "host=db user=alice password=*** dbname=runs",
        ),
        ("host=db password = 's3 cret\\'x' user=alice", "host=db password = *** user=alice"),
        ("postgresql://alice:p@ss@db/runs", "postgresql://alice:***@db/runs"),
        ("/home/me/runs.db", "/home/me/runs.db"),
    ],
)
def test_redact_dsn(given, expected):
    out = redact.redact_dsn(given)
    assert out == expected
    assert "s3" not in out and "p@ss" not in out


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("MY_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("OPENAI_API_KEY", True),
        ("PGPASSWORD", True),
        ("db_passwd", True),
        ("GITHUB_AUTH", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("CUDA_VISIBLE_DEVICES", False),
        ("OMP_NUM_THREADS", False),
        ("PATH", False),
    ],
)
def test_is_secret_name(name, secret):
    assert redact.is_secret_name(name) is secret


# --------------------------------------------------------------------------------------------
# environment: system
# --------------------------------------------------------------------------------------------


def test_system_info_shape_and_copy():
    info = environment.system_info()
    assert info["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert info["executable"] == sys.executable
    assert info["implementation"] and info["platform"] and info["os"] and info["machine"]
    assert isinstance(info["hostname"], str) and isinstance(info["cpu"], str) and info["cpu"]
    assert info["cpu_count"] >= 1
    assert info["memory_bytes"] is None or info["memory_bytes"] > 100 * 2**20
    assert isinstance(info["gpus"], list)
    info["gpus"].append({"name": "fake"})
    info["python"] = "0"
    assert environment.system_info()["python"] != "0"
    assert {"name": "fake"} not in environment.system_info()["gpus"]


def test_gpu_info_from_proc(tmp_path):
    proc = tmp_path / "nvidia"
    for bus, model in (("0000:01:00.0", "NVIDIA A100-SXM4-40GB"), ("0000:02:00.0", "Tesla T4")):
        (proc / "gpus" / bus).mkdir(parents=True)
        (proc / "gpus" / bus / "information").write_text(
            f"Model: \t\t {model}\nIRQ:   \t\t 42\nGPU UUID: \t GPU-abc\nBus Type: \t PCIe\n"
        )
    (proc / "version").write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
        "GCC version:  gcc version 12.2.0\n"
    )
    gpus = environment.gpu_info(proc_dir=str(proc), nvidia_smi="definitely-not-here")
    assert gpus == [
        {"name": "NVIDIA A100-SXM4-40GB", "driver": "535.104.05"},
        {"name": "Tesla T4", "driver": "535.104.05"},
    ]


def test_gpu_info_from_nvidia_smi_and_absent(tmp_path, monkeypatch):
    missing = str(tmp_path / "no-proc")
    assert environment.gpu_info(proc_dir=missing, nvidia_smi="definitely-not-here") == []
    bindir = tmp_path / "bin"
    bindir.mkdir()
    smi = bindir / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        'echo "NVIDIA GeForce RTX 3090, 24576 MiB, 535.104.05"\n'
        'echo "Tesla T4, [N/A], [N/A]"\n'
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert environment.gpu_info(proc_dir=missing) == [
        {"name": "NVIDIA GeForce RTX 3090", "memory_bytes": 24576 * 2**20, "driver": "535.104.05"},
        {"name": "Tesla T4"},
    ]
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert environment.gpu_info(proc_dir=missing) == []
    smi.write_text("#!/bin/sh\nsleep 10\n")
    t0 = time.perf_counter()
    assert environment.gpu_info(proc_dir=missing, timeout=0.3) == []
    assert time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------------------------
# environment: installed distributions
# --------------------------------------------------------------------------------------------


def importlib_packages(path=None) -> dict[str, str]:
    """What importlib.metadata reports: canonical name → version of the first found."""
    kwargs = {} if path is None else {"path": path}
    found: dict[str, str] = {}
    for dist in md.distributions(**kwargs):
        try:
            name = dist.metadata["Name"]
        except FileNotFoundError:
            # The importlib_metadata backport (which MLflow installs) finds these too, and
            # raises MetadataNotFound for a dist-info without metadata where the stdlib
            # returns empty metadata: both mean "not a distribution".
            continue
        if name:
            found.setdefault(environment.canonical_name(name), dist.version)
    return found


def test_installed_packages_equal_importlib_metadata_for_the_venv():
    ours = environment.installed_packages()
    theirs = importlib_packages()
    assert ours == theirs
    assert ours["numpy"] and ours["pytest"] and ours["nbtrace"]
    assert environment.installed_packages(sys.path) == theirs


def _dist_info(site: Path, dirname: str, name: str, version: str, top_level: str | None = None):
    d = site / dirname
    d.mkdir(parents=True)
    (d / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nBody\n"
    )
    if top_level is not None:
        (d / "top_level.txt").write_text(top_level)
    return d


def test_installed_packages_equal_importlib_metadata_for_odd_layouts(tmp_path):
    site1, site2 = tmp_path / "site1", tmp_path / "site2"
    _dist_info(site1, "Foo_Bar-1.0.dist-info", "Foo.Bar", "1.0")
    _dist_info(site1, "zope.interface-6.1.dist-info", "zope.interface", "6.1")
    _dist_info(site1, "torch-2.3.0+cu121.dist-info", "torch", "2.3.0+cu121")
    _dist_info(site1, "epoch-1!2.0.dist-info", "epoch", "1!2.0")
    # legacy, non-normalized version: the dir name escapes it; METADATA is read instead
    _dist_info(site1, "legacy-1.0_beta.dist-info", "legacy", "1.0-beta")
    # not a parseable name (pip's leftover "~" dirs): METADATA is read
    _dist_info(site1, "~umpy-0.9.dist-info", "oddname", "0.9")
    # egg-info directory with python tag, egg-info file, develop-style egg-info without version
    egg = site1 / "Old_Pkg-0.3-py3.11.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: Old-Pkg\nVersion: 0.3\n")
    (site1 / "single-2.1-py3.11.egg-info").write_text(
        "Metadata-Version: 1.0\nName: single\nVersion: 2.1\n"
    )
    dev = site1 / "devpkg.egg-info"
    dev.mkdir()
    (dev / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: devpkg\nVersion: 0.0.1.dev3\n")
    # no metadata at all: importlib skips it, and so do we
    (site1 / "broken.dist-info").mkdir()
    # the same project twice along the path: the first wins
    _dist_info(site1, "dup-1.0.dist-info", "dup", "1.0")
    _dist_info(site2, "dup-2.0.dist-info", "dup", "2.0")
    _dist_info(site2, "other-3.0.dist-info", "other", "3.0")
    # a zipped path entry and an .egg directory entry
    zpath = tmp_path / "bundle.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("zipped-4.0.dist-info/METADATA", "Name: zipped\nVersion: 4.0\n")
        zf.writestr("weird-name-4.0.dist-info/METADATA", "Name: weird-name\nVersion: 4.0\n")
    eggdir = tmp_path / "eggy-5.0-py3.11.egg"
    (eggdir / "EGG-INFO").mkdir(parents=True)
    (eggdir / "EGG-INFO" / "PKG-INFO").write_text("Name: eggy\nVersion: 5.0\n")

    paths = [str(site1), str(site2), str(zpath), str(eggdir), str(tmp_path / "missing")]
    ours = environment.installed_packages(paths)
    theirs = importlib_packages(paths)
    assert ours == theirs
    assert ours["foo-bar"] == "1.0" and ours["legacy"] == "1.0-beta" and ours["dup"] == "1.0"
    assert ours["old-pkg"] == "0.3" and ours["zipped"] == "4.0" and ours["eggy"] == "5.0"
    assert ours["oddname"] == "0.9" and ours["single"] == "2.1"


def test_installed_packages_is_fast():
    environment._scan(sys.path)  # warm the OS's directory cache
    t0 = time.perf_counter()
    for _ in range(5):
        environment._scan(sys.path)
    per_call_ms = (time.perf_counter() - t0) / 5 * 1000
    assert per_call_ms < 50, per_call_ms  # target < 5 ms; generous for loaded CI machines


def test_packages_cache_key_changes_on_install(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    key1 = environment.packages_cache_key()
    assert environment.packages_cache_key() == key1
    assert "newpkg" not in environment.installed_packages()
    time.sleep(0.01)
    _dist_info(site, "newpkg-1.2.dist-info", "newpkg", "1.2")
    key2 = environment.packages_cache_key()
    assert key2 != key1
    assert environment.installed_packages()["newpkg"] == "1.2"


# --------------------------------------------------------------------------------------------
# environment: imported modules
# --------------------------------------------------------------------------------------------


def test_imported_modules_includes_numpy_with_its_version():
    import numpy

    mods = environment.imported_modules(environment.installed_packages())
    assert mods["numpy"] == numpy.__version__
    assert mods["pytest"] == md.version("pytest")
    for excluded in ("json", "sys", "os", "_pytest", "__main__", "builtins"):
        assert excluded not in mods
    assert all("." not in name for name in mods)


def test_imported_modules_resolves_by_name_and_top_level(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _dist_info(site, "my_dist-2.0.dist-info", "my-dist", "2.0", top_level="mymod\n")
    _dist_info(site, "shared_a-1.0.dist-info", "shared-a", "1.0", top_level="sharedns\n")
    _dist_info(site, "shared_b-1.0.dist-info", "shared-b", "1.0", top_level="sharedns\n")
    _dist_info(site, "plainpkg-3.1.dist-info", "plainpkg", "3.1")
    (site / "mymod.py").write_text("X = 1\n")
    (site / "plainpkg.py").write_text("__version__ = ('not', 'a', 'str')\n")
    (site / "sharedns").mkdir()
    (site / "localhelper.py").write_text("def __getattr__(name):\n    raise RuntimeError(name)\n")
    monkeypatch.syspath_prepend(str(site))
    for name in ("mymod", "plainpkg", "sharedns", "localhelper"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import localhelper  # noqa: F401
    import mymod  # noqa: F401
    import plainpkg  # noqa: F401
    import sharedns  # noqa: F401

    monkeypatch.setitem(sys.modules, "inmemory", types.ModuleType("inmemory"))
    try:
        mods = environment.imported_modules(environment.installed_packages())
    finally:
        for name in ("mymod", "plainpkg", "sharedns", "localhelper"):
            sys.modules.pop(name, None)
    assert mods["mymod"] == "2.0"  # via top_level.txt
    assert mods["plainpkg"] == "3.1"  # by its name; a non-str __version__ is ignored
    assert mods["sharedns"] is None  # two distributions claim it: unknown, not a guess
    assert mods["localhelper"] is None  # module __getattr__ never triggered
    assert "inmemory" not in mods  # built in memory: not a dependency


def test_imported_modules_is_fast():
    import numpy  # noqa: F401

    packages = environment.installed_packages()
    environment.imported_modules(packages)
    t0 = time.perf_counter()
    for _ in range(10):
        environment.imported_modules(packages)
    per_call_ms = (time.perf_counter() - t0) / 10 * 1000
    assert per_call_ms < 20, per_call_ms  # target < 2 ms


# --------------------------------------------------------------------------------------------
# environment: variables
# --------------------------------------------------------------------------------------------


def test_env_vars_allowlist_never_returns_secrets():
    environ = {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "CUDA_HOME": "/usr/local/cuda",
        "OMP_NUM_THREADS": "4",
        "MY_TOKEN": "tok",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "PGPASSWORD": "pg",
        "DATABASE_URL": "postgresql://alice:s3cret@db/runs",
        "HOME": "/root",
    }
    allow = [
        "CUDA_*",
        "OMP_NUM_THREADS",
        "MY_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "PG*",
        "DATABASE_URL",
    ]
    got = environment.env_vars(allow, environ=environ)
    assert got == {
        "CUDA_HOME": "/usr/local/cuda",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "DATABASE_URL": "postgresql://db/runs",
        "OMP_NUM_THREADS": "4",
    }
    assert (
        environment.env_vars(["*"], environ=environ)
        .keys()
        .isdisjoint({"MY_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD"})
    )
    assert environment.env_vars([], environ=environ) == {}


def test_env_vars_default_allowlist(monkeypatch):
    monkeypatch.delenv("NBTRACE_ENV_ALLOWLIST", raising=False)
    assert environment.default_allowlist() == []
    assert environment.env_vars() == {}
    monkeypatch.setenv("NBTRACE_ENV_ALLOWLIST", " NBT_TEST_A , NBT_TEST_B*,,NBT_TEST_TOKEN")
    monkeypatch.setenv("NBT_TEST_A", "a")
    monkeypatch.setenv("NBT_TEST_B1", "https://u:pw@h/x")
    monkeypatch.setenv("NBT_TEST_TOKEN", "t")
    assert environment.default_allowlist() == ["NBT_TEST_A", "NBT_TEST_B*", "NBT_TEST_TOKEN"]
    assert environment.env_vars() == {"NBT_TEST_A": "a", "NBT_TEST_B1": "https://h/x"}


# --------------------------------------------------------------------------------------------
# git
# --------------------------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "T",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "T",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def run_git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    run_git(r, "init", "-q")
    (r / "train.py").write_text("alpha = 0.1\n")
    (r / "nb.ipynb").write_text("{}\n")
    run_git(r, "add", ".")
    run_git(r, "commit", "-q", "-m", "first")
    return r


def test_git_clean_repo(repo):
    state = git.git_state(str(repo))
    assert state == {
        "commit": run_git(repo, "rev-parse", "HEAD"),
        "branch": "main",
        "dirty": False,
        "diff": "",
        "remote": None,
    }
    assert git.git_state(str(repo / "nb.ipynb")) == state  # a file path works too
    (repo / "untracked.txt").write_text("not code that ran\n")
    assert git.git_state(str(repo))["dirty"] is False


def test_git_dirty_repo_with_diff(repo):
    (repo / "train.py").write_text("alpha = 0.5\n")
    (repo / "staged.py").write_text("beta = 2\n")
    run_git(repo, "add", "staged.py")
    state = git.git_state(str(repo))
    assert state is not None and state["dirty"] is True
    assert "-alpha = 0.1" in state["diff"] and "+alpha = 0.5" in state["diff"]
    assert "+beta = 2" in state["diff"]  # staged changes are part of `git diff HEAD`


def test_git_detached_head(repo):
    (repo / "train.py").write_text("alpha = 0.2\n")
    run_git(repo, "commit", "-q", "-am", "second")
    first = run_git(repo, "rev-parse", "HEAD~1")
    run_git(repo, "checkout", "-q", "--detach", first)
    state = git.git_state(str(repo))
    assert state["commit"] == first and state["branch"] is None and state["dirty"] is False


def test_git_no_commits(tmp_path):
    r = tmp_path / "fresh"
    r.mkdir()
    run_git(r, "init", "-q")
    state = git.git_state(str(r))
    assert state == {"commit": None, "branch": "main", "dirty": False, "diff": "", "remote": None}
    (r / "a.py").write_text("x = 1\n")
    run_git(r, "add", "a.py")
    (r / "a.py").write_text("x = 2\n")
    state = git.git_state(str(r))
    assert state["commit"] is None and state["dirty"] is True
    assert "+x = 1" in state["diff"] and "+x = 2" in state["diff"]


def test_git_not_a_repo_and_git_missing(tmp_path, repo, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git.git_state(str(plain)) is None
    assert git.git_state(str(tmp_path / "does" / "not" / "exist")) is None
    assert git.git_state(str(repo / ".git")) is None  # inside .git is not a work tree
    monkeypatch.setattr(git, "_git_executable", lambda: None)
    assert git.git_state(str(repo)) is None


def test_git_remote_credentials_removed(repo):
    run_git(repo, "remote", "add", "upstream", "https://other.example/y.git")
    run_git(repo, "remote", "add", "origin", "https://user:s3cret@host/x.git")
    (repo / "train.py").write_text("alpha = 0.9\n")
    state = git.git_state(str(repo))
    assert state["remote"] == "https://host/x.git"
    assert "s3cret" not in json.dumps(state)
    run_git(repo, "remote", "remove", "origin")
    assert git.git_state(str(repo))["remote"] == "https://other.example/y.git"


def test_git_diff_truncated(repo):
    (repo / "data.txt").write_text("".join(f"line {i}\n" for i in range(40000)))
    run_git(repo, "add", "data.txt")
    run_git(repo, "commit", "-q", "-m", "data")
    (repo / "data.txt").write_text("".join(f"changed {i} é\n" for i in range(40000)))
    state = git.git_state(str(repo))
    assert state["dirty"] is True
    assert state["diff"].endswith("\n[... diff truncated at 262144 bytes ...]\n")
    body = state["diff"][: -len(git.TRUNCATION_MARKER)]
    assert len(body.encode("utf-8")) <= git.DIFF_LIMIT + 3  # a cut character becomes U+FFFD
    assert body.startswith("diff --git a/data.txt b/data.txt")


def test_git_worktree_state(repo, tmp_path):
    wt = tmp_path / "wt"
    run_git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    state = git.git_state(str(wt))
    assert state["branch"] == "feature" and state["commit"] == run_git(repo, "rev-parse", "HEAD")
    (wt / "train.py").write_text("alpha = 7\n")
    run_git(wt, "commit", "-q", "-am", "on feature")
    assert git.git_state(str(wt))["commit"] == run_git(wt, "rev-parse", "HEAD") != state["commit"]


def test_git_capture_and_user_thread_store_each_document_once(repo):
    """The capture cache is shared by the user's thread and the worker (the git capture
    stores its blob there): however the threads interleave, each document is queued once,
    and runs started before the git state is known get it by one update each."""
    import threading

    from nbtrace.capture.cache import CaptureCache

    queued: list[tuple] = []
    cache = CaptureCache(queued.append, lambda: None, lambda: None)
    docs = [{"i": i} for i in range(300)]
    go = threading.Barrier(6)

    def store_all() -> None:
        go.wait()
        for d in docs:
            cache.blob("doc", d)
            cache.source(hashing.sha256_text(str(d)), str(d))

    threads = [threading.Thread(target=store_all) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = [op[0] for op in queued]
    assert kinds.count("blob") == kinds.count("source") == len(docs)
    assert len({op[1] for op in queued}) == 2 * len(docs)

    cap = cache._git_async(str(repo))
    cap.attach("r1")
    cap.attach("r2")
    cap.join(60)
    assert cap.done and cap.hash is not None
    cap.attach("r3")  # after the capture: at once
    updates = [op for op in queued if op[0] == "run_update"]
    assert sorted(op.run_id for op in updates) == ["r1", "r2", "r3"]
    assert {op.fields["git_hash"] for op in updates} == {cap.hash}
    assert [op for op in queued if op[0] == "blob" and op.hash == cap.hash]


# --------------------------------------------------------------------------------------------
# notebook
# --------------------------------------------------------------------------------------------


def write_nb(path: Path, cells: list[dict]) -> None:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
    path.write_text(json.dumps(nb))


def test_notebook_cell_hashes(tmp_path):
    path = tmp_path / "nb.ipynb"
    write_nb(
        path,
        [
            {"cell_type": "markdown", "source": ["# Title\n"], "metadata": {}},
            {"cell_type": "code", "source": ["import numpy as np\n", "x = 1"], "metadata": {}},
            {"cell_type": "code", "source": "print(x)", "metadata": {}},
            {"cell_type": "raw", "source": "raw", "metadata": {}},
            {"cell_type": "code", "source": [], "metadata": {}},
        ],
    )
    expected = [
        hashing.sha256_text("import numpy as np\nx = 1"),
        hashing.sha256_text("print(x)"),
        hashing.sha256_text(""),
    ]
    assert notebook.notebook_cell_hashes(path) == expected
    assert notebook.notebook_cell_hashes(str(path)) == expected
    # saving again (new mtime and size) is seen
    write_nb(path, [{"cell_type": "code", "source": ["y = 2\n"], "metadata": {}}])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert notebook.notebook_cell_hashes(path) == [hashing.sha256_text("y = 2\n")]


def test_notebook_cell_hashes_unreadable(tmp_path):
    assert notebook.notebook_cell_hashes(tmp_path / "missing.ipynb") == []
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert notebook.notebook_cell_hashes(bad) == []
    odd = tmp_path / "odd.ipynb"
    odd.write_text("[1, 2]")
    assert notebook.notebook_cell_hashes(odd) == []


def test_notebook_path_sources(tmp_path, monkeypatch):
    for var in ("NBTRACE_NOTEBOOK", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    sub = tmp_path / "proj" / "sub"
    sub.mkdir(parents=True)
    nb = sub / "exp.ipynb"
    write_nb(nb, [])
    monkeypatch.chdir(sub)
    assert notebook.notebook_path() is None
    assert notebook.notebook_path({"__vsc_ipynb_file__": str(nb)}) == str(nb)
    monkeypatch.setenv("JPY_SESSION_NAME", "exp.ipynb")
    assert notebook.notebook_path() == str(nb)
    monkeypatch.setenv("JPY_SESSION_NAME", "sub/exp.ipynb")  # relative to the server root
    assert notebook.notebook_path() == str(nb)
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    assert notebook.notebook_path({"__vsc_ipynb_file__": "/elsewhere.ipynb"}) == str(nb)
    monkeypatch.setenv("JPY_SESSION_NAME", "gone/other.ipynb")
    assert notebook.notebook_path() == "gone/other.ipynb"
    monkeypatch.setenv("NBTRACE_NOTEBOOK", "/replay/copy.ipynb")
    assert notebook.notebook_path() == "/replay/copy.ipynb"


# --------------------------------------------------------------------------------------------
# resources
# --------------------------------------------------------------------------------------------


def test_resource_meter_numbers_are_sane():
    meter = resources.ResourceMeter()
    idle = meter.stop()  # never started: no time, and the process's peak memory so far
    assert set(idle) == {"wall_s", "cpu_s", "peak_rss_bytes"}
    assert idle["wall_s"] == 0.0 and idle["cpu_s"] == 0.0
    assert isinstance(idle["peak_rss_bytes"], int) and idle["peak_rss_bytes"] > 1 << 20
    meter.start()
    time.sleep(0.05)
    t_end = time.process_time() + 0.05
    while time.process_time() < t_end:
        pass
    before = meter.stop()
    assert 0.09 <= before["wall_s"] < 5
    assert 0.03 <= before["cpu_s"] <= before["wall_s"] + 0.1
    assert before["peak_rss_bytes"] > 1 << 20


def test_resource_meter_peak_rss_rises_with_allocation():
    blob = b"\x01" * (200 << 20)  # an earlier peak that the reset must forget
    del blob
    meter = resources.ResourceMeter()
    meter.start()
    if not meter.peak_reset:
        pytest.skip("this system does not allow resetting the peak RSS")
    base = meter.stop()["peak_rss_bytes"]
    blob = b"\x01" * (50 << 20)  # touched pages, not lazily zeroed ones
    after = meter.stop()["peak_rss_bytes"]
    del blob
    assert after - base >= 45 << 20
    assert base < after < base + (150 << 20)  # the 200 MB peak before start() was forgotten


def test_resource_meter_peak_from_getrusage_matches_vmhwm():
    """The peak read from ``getrusage`` (no /proc read) is the run's VmHWM, not the process's."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    blob = b"\x01" * (300 << 20)  # a peak before the run that the reset must forget
    del blob
    meter = resources.ResourceMeter()
    meter.start()
    if not meter.peak_reset:
        pytest.skip("this system does not allow resetting the peak RSS")
    blob = b"\x02" * (60 << 20)
    peak = meter.stop()["peak_rss_bytes"]
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    del blob
    assert abs(peak - hwm) < 4 << 20, (peak, hwm)


def test_resource_meter_in_a_forked_child_reads_its_own_process():
    """The kept-open /proc descriptors are the parent's: a forked child opens its own."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        pytest.skip("fork and /proc needed")
    meter = resources.ResourceMeter()
    meter.start()
    meter.stop()
    resources._peak_rss_bytes()  # the parent's descriptors are open now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a peak of its own, far above the parent's current RSS
        try:
            os.close(r)
            blob = b"\x03" * (200 << 20)
            peak = resources._peak_rss_bytes()
            os.write(w, str(peak if blob else 0).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child_peak = int(f.read() or 0)
    os.waitpid(pid, 0)
    with open("/proc/self/status") as f:
        parent_hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    assert child_peak >= 200 << 20
    assert child_peak != parent_hwm


# --------------------------------------------------------------------------------------------
# seeds (each in a fresh interpreter, since seeding is process-global)
# --------------------------------------------------------------------------------------------

SEED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from nbtrace.capture.seeds import install_seeds, seeds_from_env, _SeedingFinder
    given = json.loads(sys.argv[1])
    if given == "env":
        given = seeds_from_env()
    recorded = install_seeds(given)
    assert "numpy" not in sys.modules, "install_seeds must not import numpy"
    import random
    import json as _j, decimal, email.mime.text  # other imports keep working
    import numpy
    out = {
        "recorded": recorded,
        "random": random.random(),
        "numpy": float(numpy.random.rand()),
        "hooks": sum(isinstance(f, _SeedingFinder) for f in sys.meta_path),
    }
    try:
        import torch
        out["torch"] = torch.seeded_with
    except ImportError:
        pass
    print(json.dumps(out))
    """
)


def run_seeded(arg, extra_env=None, pythonpath=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACE_SEED")}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), SRC])
    env.update(extra_env or {})
    out = subprocess.run(
        [PYTHON, "-c", SEED_SCRIPT, json.dumps(arg)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_seeds_same_seed_same_draws_numpy_imported_after():
    a = run_seeded({"random": 123, "numpy": 123, "torch": 123})
    b = run_seeded({"random": 123, "numpy": 123, "torch": 123})
    c = run_seeded({"random": 124, "numpy": 124, "torch": 124})
    assert a["recorded"] == {"random": 123, "numpy": 123, "torch": 123}
    assert (a["random"], a["numpy"]) == (b["random"], b["numpy"])
    assert a["random"] != c["random"] and a["numpy"] != c["numpy"]
    import random

    import numpy

    assert a["random"] == random.Random(123).random()
    assert a["numpy"] == numpy.random.RandomState(123).rand()


def test_seeds_fresh_are_recorded_and_replayable():
    first = run_seeded(None)
    rec = first["recorded"]
    assert set(rec) == {"random", "numpy", "torch"}
    assert all(isinstance(v, int) and 0 <= v < 2**32 for v in rec.values())
    replay = run_seeded("env", extra_env={"NBTRACE_SEEDS": json.dumps(rec)})
    assert replay["recorded"] == rec
    assert (replay["random"], replay["numpy"]) == (first["random"], first["numpy"])
    other = run_seeded(None)
    assert other["recorded"] != rec  # 1 in 2**32 chance of a false failure


def test_seeds_disabled_by_env():
    a = run_seeded({"random": 5}, extra_env={"NBTRACE_SEED_RNG": "0"})
    b = run_seeded({"random": 5}, extra_env={"NBTRACE_SEED_RNG": "0"})
    assert a["recorded"] == {} and a["hooks"] == 0
    assert a["numpy"] != b["numpy"]


def test_seeds_numpy_already_imported_and_torch_hook(tmp_path):
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text(
        "seeded_with = None\ndef manual_seed(s):\n    global seeded_with\n    seeded_with = s\n"
    )
    script = textwrap.dedent(
        """
        import json, sys
        import numpy, numpy.random
        from nbtrace.capture.seeds import install_seeds, _SeedingFinder
        rec = install_seeds({"random": 7, "numpy": 2**32 + 9, "torch": 11})
        hooks_before = sum(isinstance(f, _SeedingFinder) for f in sys.meta_path)
        import torch
        import joblib.parallel  # the hook also waits for joblib (its tasks are reseeded)
        hooks_after = sum(isinstance(f, _SeedingFinder) for f in sys.meta_path)
        print(json.dumps({"rec": rec, "numpy": float(numpy.random.rand()),
                          "torch": torch.seeded_with, "loader_patched":
                          "exec_module" in vars(torch.__loader__),
                          "hooks": [hooks_before, hooks_after]}))
        """
    )
    out = subprocess.run(
        [PYTHON, "-c", script],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), SRC])},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    import numpy

    assert got["numpy"] == numpy.random.RandomState(9).rand()  # seed % 2**32
    assert got["torch"] == 11
    assert got["hooks"] == [1, 0]  # removed once numpy and torch are both seeded
    assert got["loader_patched"] is False  # the loader is left as it was found


def test_seeds_from_env_parsing(monkeypatch):
    monkeypatch.delenv("NBTRACE_SEEDS", raising=False)
    assert seeds.seeds_from_env() is None
    monkeypatch.setenv("NBTRACE_SEEDS", '{"random": 1, "numpy": 2, "bogus": 3, "torch": -1}')
    assert seeds.seeds_from_env() == {"random": 1, "numpy": 2}
    monkeypatch.setenv("NBTRACE_SEEDS", "not json")
    assert seeds.seeds_from_env() is None
    monkeypatch.setenv("NBTRACE_SEED_RNG", "off")
    assert seeds.seeding_enabled() is False


# --------------------------------------------------------------------------------------------
# import cost and timing
# --------------------------------------------------------------------------------------------


def test_import_is_light():
    code = (
        "import sys\n"
        "import nbtrace.capture.environment, nbtrace.capture.git, nbtrace.capture.notebook\n"
        "import nbtrace.capture.resources, nbtrace.capture.seeds, nbtrace.hashing\n"
        "heavy = {'numpy', 'pandas', 'IPython', 'tornado', 'jupyter_server', 'nbformat',"
        " 'importlib.metadata', 'zipfile'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", code],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


TIMING_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy  # a typical kernel has imported a few libraries
    from nbtrace.capture import environment, git
    repo = sys.argv[1]

    def timed(fn):
        t0 = time.perf_counter(); fn(); return (time.perf_counter() - t0) * 1000

    cold = {
        "system_info": timed(environment.system_info),
        "installed_packages": timed(environment.installed_packages),
        "imported_modules": timed(
            lambda: environment.imported_modules(environment.installed_packages())),
        "git_state": timed(lambda: git.git_state(repo)),
    }
    packages = environment.installed_packages()
    warm = {
        "system_info": timed(environment.system_info),
        "packages_cache_key": timed(environment.packages_cache_key),
        "installed_packages(cached)": timed(environment.installed_packages),
        "imported_modules": timed(lambda: environment.imported_modules(packages)),
    }
    again = {"git_state": timed(lambda: git.git_state(repo))}
    print(json.dumps({"cold": cold, "warm": warm, "git_state again": again}))
    """
)


def test_timing_report(repo, capsys):
    (repo / "train.py").write_text("alpha = 0.4\n")  # dirty: the diff runs too
    out = subprocess.run(
        [PYTHON, "-c", TIMING_SCRIPT, str(repo)],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    with capsys.disabled():
        for phase in report:
            parts = ", ".join(f"{k} {v:.2f} ms" for k, v in report[phase].items())
            total = sum(report[phase].values())
            print(f"\n[capture timing] {phase}: total {total:.1f} ms ({parts})")


def test_run_ids_are_unique_and_a_forked_child_makes_its_own() -> None:
    """Ids come from a pool filled by one urandom call; a forked child must not hand out the
    ids its parent will."""
    from nbtrace.util import new_id

    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(len(i) == 12 and int(i, 16) >= 0 for i in ids)
    if not hasattr(os, "fork"):
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, " ".join(new_id() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child = set(f.read().split())
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(200)}
    assert len(child) == 5 and not child & parent


def test_recorded_cwd_follows_chdir(tmp_path) -> None:
    """The working directory is cached for the runs of a loop, and an ``os.chdir`` (seen by
    the audit hook) makes the next run record the new one."""
    code = textwrap.dedent(f"""
        import os, nbtrace
        from nbtrace.capture import deps
        deps.watch_reads()
        first = deps.cwd()
        os.chdir({str(tmp_path)!r})
        second = deps.cwd()
        os.chdir("/")
        fd = os.open({str(tmp_path)!r}, os.O_RDONLY)
        os.fchdir(fd)
        print(first != second, second == os.getcwd(), deps.cwd() == {str(tmp_path)!r})
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/")
    assert out.stdout.split() == ["True", "True", "True"], out.stdout + out.stderr


def test_resource_meter_is_not_fooled_by_the_mark_a_process_inherits() -> None:
    """A kernel started by a big process inherits that process's memory mark in
    ``ru_maxrss``; the run's peak must still be the kernel's own (~tens of MB), not it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    big = b"\x04" * (600 << 20)  # this process's mark, inherited by the child below
    code = textwrap.dedent("""
        import resource
        from nbtrace.capture import resources
        m = resources.ResourceMeter()
        for _ in range(3):
            m.start()
            blob = b"\\x05" * (8 << 20)
            peak = m.stop()["peak_rss_bytes"]
            del blob
        print(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, m.peak_reset)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del big
    peak, maxrss, reset = out.stdout.split()
    if reset != "True":
        pytest.skip("this system does not allow resetting the peak RSS")
    assert int(peak) < 400 << 20, out.stdout
    if int(maxrss) < 600 << 20:
        pytest.skip("this system's processes do not inherit the mark (nothing to be fooled by)")
