"""Waveform losses for whole separators (sources are fixed classes: no permutation search)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

from mstt.features.targets import Targets


@dataclass
class WaveformLossOptions:
    """Negative SI-SDR (default) or L1 between estimated and reference source waveforms."""

    kind: str = "si_sdr"  # si_sdr | l1
    silence: float = 1e-8  # mean power under which a reference counts as silent (no SI-SDR)


class WaveformLoss:
    """Loss for a separator's ``stems (batch, sources, samples)`` against the reference sources."""

    def __init__(self, options: WaveformLossOptions | None = None) -> None:
        self.options = options or WaveformLossOptions()
        if self.options.kind not in ("si_sdr", "l1"):
            raise ValueError(f"kind must be si_sdr or l1, not '{self.options.kind}'")

    def __call__(self, stems: torch.Tensor, targets: Targets) -> torch.Tensor:
        """Scalar loss; silent references are left out of the SI-SDR mean (it is undefined there)."""
        reference = targets.source_wave.to(stems.dtype)
        if self.options.kind == "l1":
            return (stems - reference).abs().mean()
        si_sdr = scale_invariant_signal_distortion_ratio(stems, reference)  # (batch, sources)
        audible = reference.pow(2).mean(-1) > self.options.silence
        if not audible.any():
            return (stems - reference).abs().mean()  # keeps the graph; nothing to score
        return -(si_sdr * audible).sum() / audible.sum()
