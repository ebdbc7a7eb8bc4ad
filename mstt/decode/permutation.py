"""Pair estimated sources with references: the assignment that maximises summed SI-SDR."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio


def pairwise_si_sdr(estimates: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Estimates ``(batch, S, samples)``, references ``(batch, S, samples)`` -> SI-SDR ``(batch, S_est, S_ref)`` in dB."""
    if estimates.dim() != 3 or estimates.shape != references.shape:
        raise ValueError(
            f"estimates and references must both be (batch, sources, samples); "
            f"got {tuple(estimates.shape)} and {tuple(references.shape)}"
        )
    # Expanding to (batch, S, S, samples) scores every pair in one call (torchmetrics does not broadcast).
    batch, n, samples = estimates.shape
    est = estimates.unsqueeze(2).expand(batch, n, n, samples)
    ref = references.unsqueeze(1).expand(batch, n, n, samples)
    return scale_invariant_signal_distortion_ratio(est, ref, zero_mean=True)


def best_permutation(estimates: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Estimates, references ``(batch, S, samples)`` -> LongTensor ``(batch, S)``: ``perm[b, j]`` is the estimate for reference ``j``."""
    scores = pairwise_si_sdr(estimates.detach(), references.detach()).double().cpu().numpy()
    # A silent reference or estimate gives NaN/-inf; rank it last rather than poison the solver.
    scores = np.nan_to_num(scores, nan=-1e9, neginf=-1e9, posinf=1e9)
    perms = np.empty(scores.shape[:2], dtype=np.int64)
    for b, matrix in enumerate(scores):
        est, ref = linear_sum_assignment(matrix, maximize=True)
        perms[b, ref] = est
    return torch.from_numpy(perms).to(estimates.device)


def apply_permutation(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Reorder sources: ``x`` ``(batch, S, ...)`` with ``perm`` ``(batch, S)`` -> ``x[b, perm[b]]`` ``(batch, S, ...)``."""
    if perm.shape != x.shape[:2]:
        raise ValueError(f"perm {tuple(perm.shape)} does not match x's (batch, sources) {tuple(x.shape[:2])}")
    index = perm.to(x.device).long().reshape(*perm.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)
