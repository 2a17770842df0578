"""Wall time, CPU time and peak memory of the kernel during a run.

Why peak memory needs a reset: the kernel's high-water mark (``VmHWM``) only grows, so a run
after a memory-hungry one would inherit its peak. Linux lets a process reset its own mark by
writing ``5`` to ``/proc/self/clear_refs`` (an O(1) operation); where that is not allowed the
figure is the peak since the kernel started, and :attr:`ResourceMeter.peak_reset` says so.

Limits: CPU time and memory are the kernel process's own; work done in child processes
(``multiprocessing``, ``joblib`` workers) is not counted.
"""

from __future__ import annotations

import os
import sys
import time

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    if resource is not None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    return time.process_time()


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS to its current RSS; False where the system refuses."""
    try:
        fd = os.open(_CLEAR_REFS, os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


#: ``(pid, fd)`` of this process's open ``/proc/self/status``. Why kept open: the file is read
#: at every run's end, and opening it plus line-by-line reading cost ~25 µs of a short run in a
#: loop; one ``pread`` costs ~10. The pid check reopens it in a forked child (whose inherited
#: descriptor would describe the parent).
_status: tuple[int, int] | None = None


def _read_status() -> bytes:
    global _status
    pid = os.getpid()
    if _status is None or _status[0] != pid:
        _status = (pid, os.open(_STATUS, os.O_RDONLY))
    return os.pread(_status[1], 16384, 0)


def _peak_rss_bytes() -> int | None:
    """Peak resident set size: ``VmHWM`` (resettable) else ``ru_maxrss`` (process lifetime)."""
    try:
        text = _read_status()
        i = text.find(b"VmHWM:")
        if i >= 0:
            return int(text[i + 6 : text.index(b"\n", i)].split()[0]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    if resource is None:
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, kB elsewhere


class ResourceMeter:
    """Measures one run: call :meth:`start` when it begins and :meth:`stop` when it ends.

    Both calls cost well under 200 µs, so the meter may wrap every run, including runs
    started in a tight loop.
    """

    def __init__(self) -> None:
        self._wall0: float | None = None
        self._cpu0 = 0.0
        #: Whether the peak-memory mark was reset at :meth:`start` (Linux with ``/proc``).
        self.peak_reset = False

    def start(self) -> None:
        """Record the starting wall clock and CPU time, and reset the peak-memory mark."""
        self.peak_reset = _reset_peak_rss()
        self._cpu0 = _cpu_seconds()
        self._wall0 = time.perf_counter()

    def stop(self) -> dict[str, float | int | None]:
        """``{"wall_s", "cpu_s", "peak_rss_bytes"}`` since :meth:`start` (zeros if never started).

        May be called more than once; each call measures from the same start.
        """
        wall1 = time.perf_counter()
        cpu1 = _cpu_seconds()
        if self._wall0 is None:
            wall_s, cpu_s = 0.0, 0.0
        else:
            wall_s, cpu_s = wall1 - self._wall0, max(0.0, cpu1 - self._cpu0)
        return {"wall_s": wall_s, "cpu_s": cpu_s, "peak_rss_bytes": _peak_rss_bytes()}
