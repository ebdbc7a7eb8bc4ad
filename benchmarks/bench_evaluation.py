"""The shared evaluation's SDR (torchmetrics, through the registered ``sdr`` metric) vs mir_eval.

    .venv/bin/pytest benchmarks/bench_evaluation.py       # pytest-benchmark table + the speed ratio
    .venv/bin/python benchmarks/bench_evaluation.py       # seconds of each and the ratio

Signals: 4 sources x 10 s at 16 kHz (decaying tones and noise), estimates = references with
cross-talk and noise; the same float64 arrays for both. mir_eval's ``bss_eval_sources`` also
computes SIR and SAR; it is timed as the evaluation calls it (sources paired as given) and with
its default permutation search (the earlier "about 20x" measurement). The ``sdr`` metric
computes SDR only, which is all the evaluation takes by default. Nothing about time is
asserted: the ratios are printed. The values are asserted to agree, since the evaluation
relies on them being the same SDR.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import mir_eval
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mstt.plugins import get_registry  # noqa: E402

N_SOURCES, SECONDS, SR = 4, 10.0, 16000
_means: dict[str, float] = {}


def signals(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(estimates, references), each float64 ``(4, 160000)``."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(SECONDS * SR), dtype=torch.float64) / SR
    f0 = torch.tensor([110.0, 196.0, 330.0, 523.0], dtype=torch.float64).unsqueeze(1)
    refs = torch.sin(2 * torch.pi * f0 * t) * torch.exp(-2 * ((t * (1 + torch.arange(N_SOURCES).unsqueeze(1))) % 1.0))
    refs = refs + 0.05 * torch.randn(refs.shape, generator=gen, dtype=torch.float64)
    crosstalk = 0.1 * refs.roll(1, dims=0)
    ests = refs + crosstalk + 0.05 * torch.randn(refs.shape, generator=gen, dtype=torch.float64)
    return ests, refs


def torchmetrics_sdr(est: torch.Tensor, ref: torch.Tensor) -> np.ndarray:
    """SDR per source through the registered ``sdr`` metric (what the shared evaluation calls)."""
    component = get_registry().get("metrics", "sdr")
    fn = component.factory(component.options())
    return fn(est, ref)["sdr"].numpy()


def mir_eval_sdr(est: torch.Tensor, ref: torch.Tensor, permutation: bool = False) -> np.ndarray:
    """SDR per source from mir_eval's ``bss_eval_sources``; ``permutation``: its default search over pairings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in mir_eval 0.8
        warnings.simplefilter("ignore", DeprecationWarning)
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref.numpy(), est.numpy(), compute_permutation=permutation)
    return sdr


def _ratio_line() -> str | None:
    """mir_eval's seconds per call (as the evaluation calls it, and with its defaults) over torchmetrics'."""
    if "torchmetrics" not in _means or len(_means) < 2:
        return None
    tm = _means["torchmetrics"]
    parts = [f"torchmetrics sdr {tm:.3f} s"]
    labels = (("mir_eval", "bss_eval_sources paired as given"), ("mir_eval_perm", "bss_eval_sources defaults (permutation search)"))
    for key, label in labels:
        if key in _means:
            parts.append(f"mir_eval {label} {_means[key]:.3f} s = {_means[key] / tm:.1f}x")
    return "; ".join(parts)


def test_sdr_torchmetrics(benchmark) -> None:
    est, ref = signals()
    values = benchmark.pedantic(torchmetrics_sdr, args=(est, ref), rounds=5, iterations=1, warmup_rounds=1)
    assert values.shape == (N_SOURCES,) and np.isfinite(values).all()
    if benchmark.stats is not None:
        _means["torchmetrics"] = benchmark.stats.stats.mean


def test_sdr_mir_eval(benchmark, summary) -> None:
    est, ref = signals()
    values = benchmark.pedantic(mir_eval_sdr, args=(est, ref), rounds=2, iterations=1)
    np.testing.assert_allclose(values, torchmetrics_sdr(est, ref), atol=1e-3)  # the same SDR
    if benchmark.stats is not None:
        _means["mir_eval"] = benchmark.stats.stats.mean
    _record(benchmark, summary)


def test_sdr_mir_eval_default_permutation(benchmark, summary) -> None:
    est, ref = signals()
    values = benchmark.pedantic(mir_eval_sdr, args=(est, ref, True), rounds=1, iterations=1)
    np.testing.assert_allclose(values, torchmetrics_sdr(est, ref), atol=1e-3)  # the right pairing wins
    if benchmark.stats is not None:
        _means["mir_eval_perm"] = benchmark.stats.stats.mean
    _record(benchmark, summary)


def _record(benchmark, summary: dict[str, str]) -> None:
    """Put the speed ratios into the saved result and the session summary."""
    line = _ratio_line()
    if line is not None:
        benchmark.extra_info["seconds_per_call"] = dict(_means)
        summary["SDR, 4 sources x 10 s at 16 kHz"] = line


def main() -> None:
    """Time each once after a warm-up and print the ratio."""
    est, ref = signals()
    torchmetrics_sdr(est, ref)
    for name, fn in (("torchmetrics", torchmetrics_sdr), ("mir_eval", mir_eval_sdr)):
        start = time.perf_counter()
        fn(est, ref)
        _means[name] = time.perf_counter() - start
    start = time.perf_counter()
    mir_eval_sdr(est, ref, permutation=True)
    _means["mir_eval_perm"] = time.perf_counter() - start
    print(_ratio_line())


if __name__ == "__main__":
    main()
