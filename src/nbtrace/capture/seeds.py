"""Reproducible randomness: a recorded seed for Python's ``random``, NumPy and torch.

Why: a notebook that draws random numbers without seeding can never reproduce its metrics, and
re-execution would report ``diverged`` for a reason that has nothing to do with the code. So the
kernel seeds the global generators itself, records the seeds with the run, and the rerun engine
passes the recorded seeds back (``NBTRACE_SEEDS``) so the replay draws the same numbers.

Why a ``sys.meta_path`` hook: importing NumPy or torch just to seed them would add hundreds of
milliseconds to every kernel, used or not. Instead the libraries are seeded right after they
are first imported. The hook watches ``numpy.random`` (NumPy 2 loads it lazily, and nothing can
draw from NumPy's global generator before it exists) and ``torch``; it claims no module, only
wraps the loader another finder found, and removes itself once both are seeded.

A user's own ``np.random.seed(...)`` or ``default_rng(...)`` still wins: this only fixes the
state that unseeded code would otherwise take from the operating system.

Randomness the global seeds miss (issue 10): an unseeded ``np.random.default_rng()`` takes its
entropy from ``numpy.random.bit_generator.randbits``, which is replaced by a generator derived
from the numpy seed (so the n-th unseeded generator of a replay equals the original's n-th).
Worker processes (joblib/loky, as in ``RandomizedSearchCV(n_jobs=-1)``) start with fresh
entropy and take tasks in whatever order they are free: each task joblib dispatches is wrapped
so that, in a child process, it reseeds ``random``, NumPy's global generator and unseeded
generators from the root seed and the task's dispatch number before it runs. Dispatch order is
the order of the task iterator, so it is the same in a replay whichever worker gets the task.
Child Python processes also get a fixed ``PYTHONHASHSEED`` (set in the kernel's environment
when unset), so set and dict orders in workers repeat.

An unseeded ``random.Random()`` made by the user's code (or by a library outside the standard
library) is seeded from the recorded ``random`` seed and its creation number, the way unseeded
NumPy generators are. The standard library's own instances (``tempfile``'s name sequence, say)
keep the operating system's entropy: their values are never results, and predictable temporary
names would be a weakness.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import threading
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

#: Keys of the recorded seed dict, one per generator.
SEED_KEYS = ("random", "numpy", "torch")

# The module whose first import triggers seeding, per generator.
_HOOKED_MODULES = {"numpy.random": "numpy", "torch": "torch", "joblib.parallel": "joblib"}
#: The seed key each hooked library draws from (joblib tasks derive from the numpy seed).
_SEED_OF = {"numpy": "numpy", "torch": "torch", "joblib": "numpy"}


def seeding_enabled() -> bool:
    """False when ``NBTRACE_SEED_RNG=0`` (or ``false``/``no``/``off``) turns seeding off."""
    value = os.environ.get("NBTRACE_SEED_RNG", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def seeds_from_env() -> dict[str, int] | None:
    """The seeds the rerun engine passed in ``NBTRACE_SEEDS`` (a JSON object), else None.

    Malformed values are ignored rather than raised: the kernel must start regardless.
    """
    raw = os.environ.get("NBTRACE_SEEDS")
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    seeds = {
        k: v
        for k, v in data.items()
        if k in SEED_KEYS and isinstance(v, int) and not isinstance(v, bool) and v >= 0
    }
    return seeds or None


class DerivedBits:
    """Stands in for ``secrets.randbits`` in NumPy: unseeded generators draw from a sequence
    fixed by a seed instead of the operating system's entropy."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed ^ 0x6E62747261636521)
        self._lock = threading.Lock()

    def __call__(self, k: int) -> int:
        with self._lock:
            return self._rng.getrandbits(k)


def _seed_numpy(module: ModuleType, seed: int) -> None:
    # ``module`` is numpy.random; its package-level ``seed`` seeds the legacy global RandomState.
    module.seed(seed % 2**32)
    bitgen = sys.modules.get("numpy.random.bit_generator")
    if bitgen is not None and hasattr(bitgen, "randbits"):
        bitgen.randbits = DerivedBits(seed)


_random_state: dict[str, Any] = {"seed": None, "count": 0}
_random_lock = threading.Lock()
_original_seed = random.Random.seed
_STDLIB = os.path.dirname(random.__file__) + os.sep
_RANDOM_FILE = random.__file__


def _derived_seed(self: random.Random, a: Any = None, version: int = 2) -> None:
    """``random.Random.seed`` that gives an unseeded instance made outside the standard library
    the next seed derived from the recorded one (see the module docstring)."""
    root = _random_state["seed"]
    if a is None and root is not None and not isinstance(self, random.SystemRandom):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == _RANDOM_FILE:
            frame = frame.f_back
        caller = frame.f_code.co_filename if frame is not None else ""
        if not caller.startswith(_STDLIB) or "site-packages" in caller:
            with _random_lock:
                n = _random_state["count"]
                _random_state["count"] = n + 1
            a = derive(root, n)
    _original_seed(self, a, version)


def _seed_random_instances(seed: int | None) -> None:
    """Derive unseeded ``random.Random()`` instances from ``seed`` from now on (None: stop)."""
    with _random_lock:
        _random_state.update(seed=seed, count=0)
    random.Random.seed = _derived_seed if seed is not None else _original_seed  # type: ignore[method-assign]


def derive(seed: int, n: int) -> int:
    """The n-th seed derived from ``seed`` (32 bits, stable across processes and versions)."""
    import hashlib

    digest = hashlib.sha256(f"nbtrace:{seed}:{n}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class SeededCall:
    """A joblib task that reseeds the child process's generators before it runs.

    Pickled to the worker with the task (so the child needs no start-up hook). In the process
    that created it (sequential or threading backends) it changes nothing: the parent's
    generators are the user's.
    """

    def __init__(self, func: Any, seed: int, parent_pid: int) -> None:
        self.func = func
        self.seed = seed
        self.parent_pid = parent_pid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != self.parent_pid:
            random.seed(self.seed)
            np_random = sys.modules.get("numpy.random")
            if np_random is not None:
                with contextlib.suppress(Exception):
                    _seed_numpy(np_random, self.seed)
        return self.func(*args, **kwargs)


#: The joblib patch's state: the root seed and the dispatch counter of this process.
_joblib_state: dict[str, Any] = {"seed": None, "count": 0}


def _seed_joblib(module: ModuleType, seed: int) -> None:
    # ``module`` is joblib.parallel: wrap every task of every BatchedCalls as it is built.
    _joblib_state.update(seed=seed, count=0)
    cls = getattr(module, "BatchedCalls", None)
    if cls is None or getattr(cls, "_nbtrace_seeded", False):
        return
    original = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        root = _joblib_state["seed"]
        if root is None:
            return
        pid = os.getpid()
        items = []
        for func, fargs, fkwargs in self.items:
            n = _joblib_state["count"]
            _joblib_state["count"] = n + 1
            items.append((SeededCall(func, derive(root, n), pid), fargs, fkwargs))
        self.items = items

    cls.__init__ = __init__
    cls._nbtrace_seeded = True


def _seed_torch(module: ModuleType, seed: int) -> None:
    module.manual_seed(seed)


_SEEDERS = {"numpy": _seed_numpy, "torch": _seed_torch, "joblib": _seed_joblib}


class _SeedingFinder:
    """Seeds NumPy / torch right after their first import; finds no module of its own.

    A plain class with ``find_spec`` (the meta path protocol); not derived from
    ``importlib.abc.MetaPathFinder``, whose import pulls in ``importlib.resources``.
    """

    def __init__(self, seeds: Mapping[str, int]) -> None:
        self._pending = {
            m: lib for m, lib in _HOOKED_MODULES.items() if _SEED_OF[lib] in seeds
        }
        self._seeds = dict(seeds)
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def done(self) -> bool:
        return not self._pending

    def seed_now(self, module_name: str, module: ModuleType) -> None:
        """Seed the generator of ``module_name`` (already imported) and stop watching it."""
        with self._lock:
            lib = self._pending.pop(module_name, None)
        if lib is not None:
            # An odd numpy/torch (a stub, a broken build) must not break the user's import.
            with contextlib.suppress(Exception):
                _SEEDERS[lib](module, self._seeds[_SEED_OF[lib]])
        if self.done:
            uninstall_hook(self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> Any:
        if fullname not in self._pending or getattr(self._local, "busy", False):
            return None
        self._local.busy = True  # the finders we ask below may import; do not recurse
        try:
            spec = self._find_with_others(fullname, path, target)
        finally:
            self._local.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # None lets the import system continue as if we were not here
        self._wrap(spec.loader, fullname)
        return spec

    def _find_with_others(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> Any:
        for finder in list(sys.meta_path):
            if finder is self or isinstance(finder, _SeedingFinder):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _wrap(self, loader: Any, fullname: str) -> None:
        """Shadow ``loader.exec_module`` on the instance; it restores itself after one call.

        Why patch the instance instead of substituting a proxy loader: ``module.__loader__``
        stays the real loader, so ``isinstance`` checks and resource readers keep working.
        """
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            try:
                original(module)
            finally:
                try:
                    del loader.exec_module
                except AttributeError:
                    pass
            self.seed_now(fullname, module)  # only reached when the module executed

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass  # a loader that cannot be patched: the module loads unseeded, never broken


_installed_lock = threading.Lock()


def uninstall_hook(finder: _SeedingFinder | None = None) -> None:
    """Remove ``finder`` (or every seeding hook, when None) from ``sys.meta_path``."""
    with _installed_lock:
        for item in list(sys.meta_path):
            if isinstance(item, _SeedingFinder) and (finder is None or item is finder):
                try:
                    sys.meta_path.remove(item)
                except ValueError:
                    pass


def generators_in_use() -> list[str]:
    """Generators whose library is already imported (and ``random``, always): for a late
    start, where their state may be the user's own seed or already drawn from."""
    used = ["random"]
    for module_name, lib in _HOOKED_MODULES.items():
        if module_name in sys.modules and _SEED_OF[lib] not in used:
            used.append(_SEED_OF[lib])
    return used


def install_seeds(
    seeds: Mapping[str, int] | None = None,
    enabled: bool = True,
    skip: Sequence[str] = (),
) -> dict[str, int]:
    """Seed ``random`` now, NumPy and torch now or at their first import; return the seeds.

    ``seeds`` are recorded ones to reuse (a replay); a generator missing from them gets a fresh
    seed from ``os.urandom`` (32 bits: NumPy's legacy seed range, and exact in JSON anywhere).
    Returns the dict to record, e.g. ``{"random": 123, "numpy": 123, "torch": 123}``, or ``{}``
    when ``enabled`` is false or ``NBTRACE_SEED_RNG=0``. Calling again replaces the previous
    hook. Never imports NumPy or torch.

    ``skip`` names generators not to touch (and not to record): those already in use when
    nbtrace started late, whose state may be the user's own seed or already drawn from.
    """
    uninstall_hook()
    _joblib_state["seed"] = None
    _seed_random_instances(None)
    if not enabled or not seeding_enabled():
        return {}
    given = dict(seeds or {})
    fresh = int.from_bytes(os.urandom(4), "big")
    chosen = {k: int(given[k]) if k in given else fresh for k in SEED_KEYS if k not in skip}
    if "numpy" in chosen:
        # Child processes (loky workers) get a fixed hash seed, recorded as a determinism
        # setting and given back to the replay kernel.
        os.environ.setdefault("PYTHONHASHSEED", str(chosen["numpy"] % 2**32))
    if "random" in chosen:
        random.seed(chosen["random"])
        _seed_random_instances(chosen["random"])
    finder = _SeedingFinder(chosen)
    for module_name in list(_HOOKED_MODULES):
        module = sys.modules.get(module_name)
        if module is not None:
            finder.seed_now(module_name, module)
    if not finder.done:
        with _installed_lock:
            sys.meta_path.insert(0, finder)
    return chosen
