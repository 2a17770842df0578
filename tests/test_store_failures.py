"""A bad value, a read-only file, a full disk, a lock held elsewhere, a first start: nothing
recorded is lost and the user's cell never waits (issue 12, items 6, 7, 8 and 14).

Real kernels (nbclient) and real SQLite files throughout; the disk-full cases use a small tmpfs
mounted for the test (root only), the read-only case a kernel without the capability that lets
root write a ``chmod 444`` file. Every wait polls a condition with a generous deadline.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernels import run_notebook
from nbtrace.store import ops as op
from nbtrace.store.schema import MIGRATIONS
from nbtrace.store.sqlite import SQLiteStore
from nbtrace.writer import Writer, sync_spool


def _outputs(nb) -> str:
    """Every stream and error text of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or " ".join(out.get("traceback", [])))
            parts.append(str(out.get("evalue", "")))
    return "\n".join(parts)


def _rows(db: str, sql: str, args: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------- 14: one transaction
def _wal_commits(wal: Path) -> int:
    """Commit frames in a WAL file (a frame header's second word is nonzero on a commit)."""
    data = wal.read_bytes()
    if len(data) < 32:
        return 0
    page = int.from_bytes(data[8:12], "big")
    n, off = 0, 32
    while off + 24 + page <= len(data):
        n += int.from_bytes(data[off + 4 : off + 8], "big") != 0
        off += 24 + page
    return n


def test_new_store_schema_is_created_in_one_transaction(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SQLiteStore(str(db))
    try:
        assert _wal_commits(Path(str(db) + "-wal")) == 1
        applied = _rows(str(db), "SELECT name FROM _sqlite_migrations ORDER BY id")
        assert [r[0] for r in applied] == [name for name, _ in MIGRATIONS]
    finally:
        store.close()
    again = SQLiteStore(str(db))  # opening an up-to-date store writes nothing
    try:
        assert _wal_commits(Path(str(db) + "-wal")) == 0
    finally:
        again.close()


def test_load_ext_on_a_new_store_in_a_kernel(tmp_path: Path) -> None:
    db = str(tmp_path / "new" / "runs.db")
    nb = run_notebook(
        [
            "%load_ext nbtrace",
            "import sys\nprint('sqlite_utils' in sys.modules)",
            "%track_run first\n%log_metric m=1",
        ],
        db,
        tmp_path,
    )
    assert nb.cells[1].outputs[0]["text"].strip() == "False"  # pandas/numpy not pulled in
    assert _rows(db, "SELECT name, status FROM runs") == [("first", "finished")]


# ---------------------------------------------------------------- 6: values and poison ops
def test_out_of_range_values_fail_at_the_call_and_lose_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    cells = [
        "%load_ext nbtrace",
        "import nbtrace\nfrom nbtrace.errors import NBTraceError\n"
        "nbtrace.start_run('big-step')\nerrors = []\n"
        "for kw in ({'step': 2**63}, {'step': -2**63 - 1}, {'step': 10**30}):\n"
        "    try:\n        nbtrace.log_metric('x', 1.0, **kw)\n"
        "    except NBTraceError as e:\n        errors.append(str(e))\n"
        "for bad in (10**400,):\n"
        "    try:\n        nbtrace.log_metric('y', bad)\n"
        "    except NBTraceError as e:\n        errors.append(str(e))\n"
        "nbtrace.log_param('huge', 10**400)\n"
        "nbtrace.log_metric('x', 2.0, step=1)\nnbtrace.end_run()\nprint(len(errors), errors)",
        "%track_run magic\n%log_metric x=1 --step 9223372036854775808",
        "%log_metric x=3 --step 2\n%end_run",
        "%track_run next\n%log_metric y=3\n%end_run",
    ]
    nb = run_notebook(cells, db, tmp_path, allow_errors=True)
    text = _outputs(nb)
    printed = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("name") == "stdout")
    assert printed.startswith("4 ")
    assert "step must be between" in text and "too large" in text
    assert "Traceback" not in text
    runs = dict(_rows(db, "SELECT name, status FROM runs"))
    assert runs == {"big-step": "finished", "magic": "finished", "next": "finished"}
    steps = _rows(
        db,
        "SELECT r.name, m.step, m.value FROM metrics m JOIN runs r ON r.id = m.run_id"
        " ORDER BY r.name, m.seq",
    )
    assert steps == [("big-step", 1, 2.0), ("magic", 2, 3.0), ("next", None, 3.0)]
    assert _rows(db, "SELECT key, num FROM params") == [("huge", None)]


def test_writer_isolates_a_poison_op(tmp_path: Path) -> None:
    """Ops the store refuses (from any path: an import, a spool file, a future op kind) are
    dropped one by one with a warning; everything queued around them is written."""
    db = str(tmp_path / "runs.db")
    store = SQLiteStore(db)
    warnings: list[str] = []
    w = Writer(store, warnings.append)
    now = time.time()
    w.submit(op.run_start({"id": "r1", "name": "n", "status": "running", "started_at": now}))
    for i in range(200):
        w.submit(op.metric("r1", "m", i + 1, i, now, float(i)))
        if i == 57:
            w.submit(op.metric("r1", "m", 1000, 2**63, now, 1.0))  # step beyond 64 bits
        if i == 150:
            w.submit(("no_such_op", "r1"))
    w.submit(op.run_end("r1", "finished", now + 1, 0, "{}"))
    try:
        assert w.flush() is True
        assert not w.has_pending()
        assert [op[0] for op, _ in w.rejected] == ["metric", "no_such_op"]
        assert sum("refused one write" in m for m in warnings) == 2
        steps = [r[0] for r in _rows(db, "SELECT step FROM metrics ORDER BY seq")]
        assert steps == list(range(200))
        assert _rows(db, "SELECT status FROM runs") == [("finished",)]
    finally:
        store.close()


# ---------------------------------------------------------------- 8: a lock held elsewhere
HOLD_UNTIL_FLAG = """
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
c.execute("ROLLBACK")
print("released", flush=True)
"""


def test_cells_never_wait_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    """Another process holds the write lock through every cell; the busy timeout is 10
    minutes, so a cell that waited for the lock would hit nbclient's 90 s cell timeout. Only
    the last cell lets the holder go; then everything is written."""
    db = str(tmp_path / "runs.db")
    SQLiteStore(db).close()
    flag = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_UNTIL_FLAG, db, str(flag)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cells = [
            "%load_ext nbtrace",
            "%track_run locked-out",
            "%log_metric m=1",
            "import nbtrace\nfor i in range(100):\n    nbtrace.log_metric('m', i, step=i)",
            "%end_run",
            f"open({str(flag)!r}, 'w').close()",
        ]
        run_notebook(cells, db, tmp_path, env={"NBTRACE_BUSY_TIMEOUT": "600"}, timeout=90)
        assert holder.wait(60) == 0
    finally:
        flag.touch()
        holder.kill()
        holder.wait()
    assert _rows(db, "SELECT name, status FROM runs") == [("locked-out", "finished")]
    assert _rows(db, "SELECT count(*) FROM metrics") == [(101,)]


# ---------------------------------------------------------------- 7: read-only, disk full
DROP_DAC = """
import ctypes
# Root writes a chmod-444 file through CAP_DAC_OVERRIDE: drop it (and DAC_READ_SEARCH) from
# this thread, whose later threads inherit the set, so the kernel meets a read-only store as
# any user would.
libc = ctypes.CDLL(None, use_errno=True)
class _Hdr(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
_hdr, _data = _Hdr(0x20080522, 0), (_Data * 2)()
assert libc.capget(ctypes.byref(_hdr), _data) == 0
_data[0].effective &= ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF
assert libc.capset(ctypes.byref(_hdr), _data) == 0
"""


def test_read_only_store_recovers_once_writable(tmp_path: Path) -> None:
    db = tmp_path / "store" / "runs.db"
    db.parent.mkdir()
    SQLiteStore(str(db)).close()
    db.chmod(0o444)
    cells = [
        DROP_DAC if os.geteuid() == 0 else "pass",
        "%load_ext nbtrace",
        "%track_run while-read-only\n%log_metric m=1.5",
        "import nbtrace, time\nfor i in range(50):\n    nbtrace.log_metric('s', i, step=i)\n"
        # wait until the background writer has met the read-only file too (an event, not
        # a duration)
        "w = nbtrace.api.tracker().writer\ndeadline = time.monotonic() + 60\n"
        "while not w._failing and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
        "assert w._failing, 'the background writer never met the read-only file'",
        "%end_run",
        f"import os, sqlite3, time\nos.chmod({str(db)!r}, 0o644)\n"
        "deadline = time.time() + 60\nfound = []\n"
        "while time.time() < deadline and not found:\n"
        f"    c = sqlite3.connect({str(db)!r})\n"
        "    found = c.execute(\"SELECT status FROM runs WHERE status = 'finished'\").fetchall()\n"
        "    c.close()\n    time.sleep(0.05)\nprint('WRITTEN' if found else 'MISSING')",
    ]
    env = {"NBTRACE_FLUSH_INTERVAL": "0.05", "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    nb = run_notebook(cells, str(db), tmp_path, env=env)
    text = _outputs(nb)
    assert "read-only" in text  # the user was told, once
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    assert last.strip() == "WRITTEN"  # while the kernel lived
    assert _rows(str(db), "SELECT name, status FROM runs") == [("while-read-only", "finished")]
    assert _rows(str(db), "SELECT count(*) FROM metrics") == [(51,)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted for the test (needs root and the right to mount)."""
    if os.geteuid() != 0:
        pytest.skip("a small filesystem needs root to mount")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


def test_full_disk_takes_the_backlog_in_smaller_batches(small_disk: Path, tmp_path: Path) -> None:
    db = str(small_disk / "runs.db")
    store = SQLiteStore(db)
    warnings: list[str] = []
    spool = tmp_path / "spool"
    w = Writer(store, warnings.append, spool_dir=spool, location_key=store.display_location)
    now = time.time()
    w.submit(op.run_start({"id": "r1", "name": "n", "status": "running", "started_at": now}))
    assert w.flush()
    filler = _fill(small_disk)
    n = 20_000
    for i in range(n):
        w.submit(op.metric("r1", "m", i + 1, i, now, float(i)))
    try:
        assert w.flush() is False  # the whole batch does not fit
        assert any("disk is full" in m for m in warnings)
        with open(filler, "r+b") as f:  # a little space comes back: not enough for it all
            f.truncate(max(0, filler.stat().st_size - 384 * 1024))
        for _ in range(40):
            if w.flush():
                break
        written = _rows(db, "SELECT count(*) FROM metrics")[0][0]
        assert written > 0  # smaller batches fitted where the whole one never could
        w.close()  # what still does not fit goes to the spool
        spooled = list(spool.glob("*.jsonl"))
        assert written == n or (spooled and any("nbtrace sync" in m for m in warnings))
        filler.unlink()
        sync_spool(store, spool, store.display_location)
        assert _rows(db, "SELECT count(*), count(DISTINCT seq) FROM metrics") == [(n, n)]
    finally:
        store.close()


def test_full_disk_at_exit_spools_and_nbtrace_sync_writes_it(
    small_disk: Path, tmp_path: Path
) -> None:
    db = str(small_disk / "runs.db")
    SQLiteStore(db).close()
    data = tmp_path / "data"
    cells = [
        "%load_ext nbtrace",
        f"import os\nfiller = {str(small_disk / 'filler')!r}\n"
        "f = open(filler, 'wb', buffering=0)\n"
        "for size in (1 << 16, 1 << 12, 1 << 9, 1):\n"
        "    try:\n        while True:\n"
        "            f.write(b'\\0' * size)\n"
        "    except OSError:\n        pass\n"
        "f.close()",
        "%track_run on-a-full-disk\nimport nbtrace\nfor i in range(3000):\n"
        "    nbtrace.log_metric('m', float(i), step=i)",
        "%end_run",
    ]
    nb = run_notebook(cells, db, tmp_path, env={"JUPYTER_DATA_DIR": str(data)})
    assert "disk is full" in _outputs(nb)
    spool = data / "nbtrace" / "spool"
    assert list(spool.glob("*.jsonl")), "nothing was spooled at exit"
    (small_disk / "filler").unlink()
    out = subprocess.run(
        [str(Path(sys.executable).parent / "nbtrace"), "sync", "--db", db],
        capture_output=True,
        text=True,
        env=dict(os.environ, JUPYTER_DATA_DIR=str(data)),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "uploaded" in out.stdout
    assert _rows(db, "SELECT name, status FROM runs") == [("on-a-full-disk", "finished")]
    assert _rows(db, "SELECT count(*) FROM metrics") == [(3000,)]
    assert not list(spool.glob("*.jsonl"))
