"""The OpenMP wait policy of mstt's commands: set before torch loads its OpenMP runtime, so that two
mstt processes on the same cores do not spin against each other.

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
while the work it waits for cannot run. That is the excess over 2x.

Rule (:func:`apply_openmp_defaults`, called by ``mstt``'s entry point :func:`mstt.cli.main`
before anything imports torch): when the environment sets none of ``OMP_WAIT_POLICY``,
``GOMP_SPINCOUNT`` (libgomp) or ``KMP_BLOCKTIME`` (LLVM/Intel OpenMP), mstt sets
``OMP_WAIT_POLICY=PASSIVE``: a waiting thread sleeps at once and leaves its core to whoever
can use it. It goes into mstt's own environment, so the processes mstt starts (data-loader
and synth workers, torchrun's ranks) inherit it. A user who sets any of the three keeps their
value: ``OMP_WAIT_POLICY=ACTIVE`` (spin, best for a machine mstt has to itself) or
``GOMP_SPINCOUNT=300000`` (libgomp's own default, i.e. mstt before this rule). Thread counts
are left to torch (one per core; ``OMP_NUM_THREADS``, ``mstt separate --threads N``).
``benchmarks/shared_cores.py`` measures the slowdown of two processes side by side under this
rule and the alternatives.

Nothing is changed when torch is already imported (``import mstt`` in a program, or
``mstt.cli.main`` called from Python): its OpenMP runtime read the environment when it loaded,
and a library must not change its host's environment.
"""

from __future__ import annotations

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
