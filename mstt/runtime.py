"""Settings of the native libraries under torch that mstt's commands make for the user: the OpenMP
wait policy (so that two mstt processes on the same cores do not spin against each other), and,
for ``mstt separate`` over many files, a bounded oneDNN primitive cache and the freed heap handed
back to the system after each file (so that memory stays flat with the number of files).

OpenMP
------
Why two processes slowed each other far more than twofold (issue 19: a separation that takes
well under a minute alone took 8 min 46 s beside a training run on 2 cores). torch's Linux CPU
wheel runs its intra-op pool, MKL and oneDNN on GNU OpenMP (``torch/lib/libgomp.so.1``), one
thread per core by default. A libgomp thread that waits (for the next parallel region, or at
the barrier that ends one) busy-spins ``GOMP_SPINCOUNT`` times before it sleeps in the kernel:
300000 spins when nothing is set, "about 3 ms" by libgomp's own estimate. libgomp cuts the spin
short only when the threads of its own process outnumber the CPUs; it cannot see other
processes. With a training run and ``mstt separate`` at 2 threads each on 2 cores, there are
4 threads for 2 cores: a thread that reaches a barrier spins on a core while the thread it
waits for, of the same process, is off the CPU because the other process's thread holds it, and
waits for the scheduler's next slice (milliseconds). A recurrent network runs thousands of small
parallel regions a second (a few per frame, layer and direction), so a region that takes
microseconds alone can take a time slice shared: each process spends most of its CPU spinning
while the work it waits for cannot run. That is, by this reading of libgomp (not yet timed on an
idle machine), the excess over 2x.

Rule (:func:`apply_openmp_defaults`, called by ``mstt``'s entry point :func:`mstt.cli.main`
before anything imports torch): when the environment sets none of ``OMP_WAIT_POLICY``,
``GOMP_SPINCOUNT`` (libgomp) or ``KMP_BLOCKTIME`` (LLVM/Intel OpenMP), mstt sets
``OMP_WAIT_POLICY=PASSIVE``: a waiting thread sleeps at once and leaves its core to whoever
can use it. It goes into mstt's own environment, so the processes mstt starts (data-loader
and synth workers) inherit it; torchrun's ranks each run the entry point themselves. A user who
sets any of the three keeps their value: ``OMP_WAIT_POLICY=ACTIVE`` (spin; likely the fastest
when mstt has the machine to itself) or
``GOMP_SPINCOUNT=300000`` (libgomp's own default, i.e. mstt before this rule). Thread counts
are left to torch (one per core; ``OMP_NUM_THREADS``, ``mstt separate --threads N``).
``benchmarks/shared_cores.py`` measures the slowdown of two processes side by side under this
rule and the alternatives.

Nothing is changed when torch is already imported (``import mstt`` in a program, or
``mstt.cli.main`` called from Python): its OpenMP runtime read the environment when it loaded,
and a library must not change its host's environment.

Memory over many files (``mstt separate``; ``benchmarks/soak_separate.py`` checks it)
----------------------------------------------------------------------------------
Two things grew the resident set of one ``mstt separate`` call with the number of files (a
soak of 100 short files: +18% peak from file 10 to 100, about 1 MB a file):

- oneDNN, which runs the LSTM trunk on a CPU, caches a compiled primitive per input shape (up to
  ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` = 1024 by default), and the last chunk of every file has
  a length of its own: each file added an RNN primitive per layer (~0.2 MB with the demo-size
  model), up to 1024 of them. :func:`bound_onednn_cache` lowers the capacity to
  :data:`ONEDNN_CACHE` (64) unless the user set it: the chunks of one file share one shape
  (4 primitives for the paper-size trunk, ~24 for ConvTasNet), so 64 keeps the current file's
  set. oneDNN reads the variable when it creates its first primitive, so this works after
  torch is imported, before the first separation.
- glibc's malloc keeps the memory that numpy and torch free between files in its heaps (the
  arrays of each file have other sizes, so the holes are rarely reused whole): :func:`release_memory`
  collects Python's cyclic garbage (matplotlib figures) and calls ``malloc_trim(0)`` after each
  file; a no-op where the C library has no ``malloc_trim``.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from typing import MutableMapping

# Any of these set by the user means they chose how OpenMP threads wait: mstt leaves it.
USER_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def apply_openmp_defaults(
    environ: MutableMapping[str, str] | None = None, torch_loaded: bool | None = None
) -> dict[str, str]:
    """Set :data:`DEFAULTS` in ``environ`` (``os.environ``) unless the user chose a wait policy
    or torch is already loaded; returns what was set ({} when nothing)."""
    environ = os.environ if environ is None else environ
    if torch_loaded is None:
        torch_loaded = "torch" in sys.modules
    if torch_loaded or any(key in environ for key in USER_KEYS):
        return {}
    environ.update(DEFAULTS)
    return dict(DEFAULTS)


# ---------------------------------------------------------------- memory over many files

ONEDNN_CACHE = 64  # primitives; oneDNN's default is 1024
ONEDNN_KEYS = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def bound_onednn_cache(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` to :data:`ONEDNN_CACHE` unless the user set it (either
    spelling); returns what was set. Call before the first model runs: oneDNN reads it once."""
    environ = os.environ if environ is None else environ
    if any(key in environ for key in ONEDNN_KEYS):
        return {}
    environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(ONEDNN_CACHE)
    return {"ONEDNN_PRIMITIVE_CACHE_CAPACITY": str(ONEDNN_CACHE)}


_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet; None: no malloc_trim here


def release_memory() -> bool:
    """Free Python's cyclic garbage and hand the C heap's free memory back to the system (glibc's
    ``malloc_trim(0)``); returns whether the heap was trimmed."""
    global _libc
    gc.collect()
    if _libc is False:
        try:
            libc = ctypes.CDLL(None)
            _libc = libc if hasattr(libc, "malloc_trim") else None
        except OSError:
            _libc = None
    if _libc is None:
        return False
    _libc.malloc_trim(0)
    return True
