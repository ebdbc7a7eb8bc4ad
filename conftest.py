"""Root pytest settings for tests/, plugins/*/tests and benchmarks/: one torch thread, set once.

One intra-op thread because the suites' tensors are tiny and a second thread only adds
OpenMP waits (10x slower on a busy 2-core machine). Set once per process and never raised
again: with torch 2.13's CPU wheel, ``set_num_threads(1)`` followed by ``set_num_threads(2)``
corrupts MKL's LAPACK state, after which ``torch.linalg.solve`` (torchmetrics' SDR) returns
slightly wrong values or fails with "Intel oneMKL ERROR: Parameter 6 was incorrect on entry
to DLASWP".
"""

import torch

torch.set_num_threads(1)
