"""Settings of the native libraries under torch that ``mstt separate`` makes for the user: fewer
threads when other processes keep cores busy (so that a separation beside a training run does
not spin against it), and, over many files, a bounded oneDNN primitive cache and the freed heap
handed back to the system after each file (so that memory stays flat with the number of files).

Sharing the cores (``mstt separate`` beside another job)
-------------------------------------------------------
Why two processes slowed each other far more than twofold (issue 19: a separation that takes
well under a minute alone took 8 min 46 s beside a training run on 2 cores). torch's Linux CPU
wheel runs its intra-op pool, MKL and oneDNN on GNU OpenMP (``torch/lib/libgomp.so.1``), one
thread per core by default. A libgomp thread that waits (for the next parallel region, or at
the barrier that ends one) busy-spins ``GOMP_SPINCOUNT`` times before it sleeps in the kernel
(300000 spins, "about 3 ms", when nothing is set), and cuts the spin short only when the threads
of its own process outnumber the CPUs: it cannot see other processes. Two processes at 2 threads
each on 2 cores: a thread that reaches a barrier spins on a core while the thread it waits for,
of the same process, is off the CPU, and a recurrent network runs thousands of small parallel
regions a second. Measured side by side (``benchmarks/shared_cores.py``, the demo's training
step and a 300 s separation, 2-core AMD EPYC VM, means of two repeats): training 23x slower,
separation 17.5x, and from one repeat to the next anywhere from 7x to 35x.

What was tried (the same script): ``OMP_WAIT_POLICY=PASSIVE`` for every mstt process removed
the contention but made a training run that had the machine to itself about 2x slower (0.18 ->
0.39 s a step: on a VM a sleeping thread's core halts and waking it is slow); a 0.1 ms spin
(``GOMP_SPINCOUNT=10000``) changed little (13x, in the first measurement). What works without costing the lone process
anything: ``mstt separate`` with one thread beside a training run that keeps its two (training
2.6-2.8x slower instead of 23x, separation 1.6x instead of 17.5x).

Rule (:func:`separation_threads`): when ``--threads`` is not given, ``mstt separate`` samples
the CPU for a quarter of a second before loading its model; if other processes keep cores busy
it uses the cores left over (at least one) and says so in one line. An idle machine gets
torch's default (one thread per core). ``--threads N`` always wins.

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
import time
from pathlib import Path
from typing import MutableMapping

BUSY_SAMPLE_SECONDS = 0.25  # long enough to see a training run's steps, short beside model loading
BUSY_CORE = 0.5  # a core counts as taken by others when they keep it this busy


def busy_cores(seconds: float = BUSY_SAMPLE_SECONDS, stat: Path = Path("/proc/stat")) -> float | None:
    """How many cores other processes keep busy now (from two reads of /proc/stat); None where unknown."""
    def totals() -> tuple[int, int] | None:
        try:
            fields = stat.read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 5:
            return None
        values = [int(v) for v in fields[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values[:8]), idle  # user..steal; guest time is already inside user

    before = totals()
    time.sleep(seconds)
    after = totals()
    if before is None or after is None or after[0] <= before[0]:
        return None
    total, idle = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def separation_threads(cores: int, busy: float | None) -> int:
    """Threads for a separation on ``cores`` cores while others keep ``busy`` of them busy (None: unknown)."""
    if busy is None:
        return cores
    taken = int(busy + (1 - BUSY_CORE))  # 0.5 of a core busy counts as a core taken
    return max(1, min(cores, cores - taken))


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
