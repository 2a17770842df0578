"""Wall time, CPU time and peak memory of the kernel during a run.

Why peak memory needs a reset: the kernel's high-water mark (``VmHWM``) only grows, so a run
after a memory-hungry one would inherit its peak. Linux lets a process reset its own mark by
writing ``5`` to ``/proc/self/clear_refs`` (an O(1) operation); where that is not allowed the
figure is the peak since the kernel started, and :attr:`ResourceMeter.peak_reset` says so.

Why so few system calls: a loop of 330 short runs pays this meter twice a run, and on a virtual
machine a ``/proc`` access after a model fit (cold caches) costs ~30 µs, a tenth of what a run
of the ElasticNet grid spends in nbtrace. So ``clear_refs`` stays open (one ``write`` a run, not
open/write/close), and the peak is read from the ``getrusage`` call that gives the CPU time
whenever that figure is unambiguous (see :meth:`ResourceMeter.stop`); ``/proc/self/status`` is
read only otherwise.

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

#: Descriptors kept open for this process: ``/proc/self/status`` (read at a run's end when
#: ``getrusage`` cannot tell the peak) and ``/proc/self/clear_refs`` (written at a run's start).
#: ``False`` once the system refused to open one. Forgotten in a forked child, whose inherited
#: descriptors would describe the parent.
_fds: dict[str, int | bool] = {}


#: The smallest ``ru_maxrss`` read in this process (bytes): an upper bound of the floor that
#: ``ru_maxrss`` never goes under (see :meth:`ResourceMeter.stop`). Linux only.
_floor: list[int | None] = [None]
_LINUX = sys.platform.startswith("linux")


def _forget_fds() -> None:
    _floor[0] = None
    for fd in _fds.values():
        if fd is not False:
            try:
                os.close(int(fd))
            except OSError:
                pass
    _fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fds)


def _fd(path: str, flags: int) -> int | None:
    fd = _fds.get(path)
    if fd is None:
        try:
            fd = _fds[path] = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            _fds[path] = False
            return None
    return None if fd is False else int(fd)


def _usage() -> tuple[float, int | None]:
    """CPU seconds (user + system) of this process so far, and ``ru_maxrss`` in bytes."""
    if resource is None:
        return time.process_time(), None
    ru = resource.getrusage(resource.RUSAGE_SELF)
    maxrss = ru.ru_maxrss if sys.platform == "darwin" else ru.ru_maxrss * 1024
    return ru.ru_utime + ru.ru_stime, maxrss


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    return _usage()[0]


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS to its current RSS; False where the system refuses."""
    fd = _fd(_CLEAR_REFS, os.O_WRONLY)
    if fd is None:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    """Peak resident set size: ``VmHWM`` (resettable) else ``ru_maxrss`` (process lifetime)."""
    fd = _fd(_STATUS, os.O_RDONLY)
    if fd is not None:
        try:
            text = os.pread(fd, 16384, 0)
            i = text.find(b"VmHWM:")
            if i >= 0:
                return int(text[i + 6 : text.index(b"\n", i)].split()[0]) * 1024  # kB
        except (OSError, ValueError, IndexError):
            pass
    return _usage()[1]


class ResourceMeter:
    """Measures one run: call :meth:`start` when it begins and :meth:`stop` when it ends.

    Both calls make one or two system calls, so the meter may wrap every run, including runs
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
        self._cpu0, maxrss = _usage()
        if maxrss is not None and _LINUX and (_floor[0] is None or maxrss < _floor[0]):
            _floor[0] = maxrss
        self._wall0 = time.perf_counter()

    def stop(self) -> dict[str, float | int | None]:
        """``{"wall_s", "cpu_s", "peak_rss_bytes"}`` since :meth:`start` (zeros if never started).

        May be called more than once; each call measures from the same start.

        Why ``ru_maxrss`` can stand for the peak: on Linux it is the larger of the memory mark
        that the reset lowers and a per-process floor that the reset leaves alone (the mark
        the process inherited when it was exec'd; it does not change while the process
        runs). Every ``ru_maxrss`` read is at least that floor, so the smallest one read so far
        bounds it from above; a reading above that bound *is* the run's mark (to within the
        kernel's batching of RSS counters, a few hundred kB). Otherwise the mark may lie under
        the floor, and ``VmHWM`` is read instead.
        """
        wall1 = time.perf_counter()
        cpu1, maxrss1 = _usage()
        if self._wall0 is None:
            wall_s, cpu_s = 0.0, 0.0
        else:
            wall_s, cpu_s = wall1 - self._wall0, max(0.0, cpu1 - self._cpu0)
        floor = _floor[0]
        if self.peak_reset and maxrss1 is not None and floor is not None and maxrss1 > floor:
            peak = maxrss1
        else:
            peak = _peak_rss_bytes()
        return {"wall_s": wall_s, "cpu_s": cpu_s, "peak_rss_bytes": peak}
