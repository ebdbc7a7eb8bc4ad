"""Masks -> stems: apply per-source masks to the mixture spectrogram and invert with its phase."""

from __future__ import annotations

import torch

from mstt.features.stft import STFT


def masks_to_stems(masks: torch.Tensor, mixture_spec: torch.Tensor, stft: STFT, length: int) -> torch.Tensor:
    """Masks ``(batch, sources, freq, frames)`` and complex mixture ``(batch, freq, frames)`` -> stems ``(batch, sources, length)``."""
    if masks.dim() != 4 or mixture_spec.dim() != 3:
        raise ValueError(
            f"masks must be (batch, sources, freq, frames) and mixture_spec (batch, freq, frames); "
            f"got {tuple(masks.shape)} and {tuple(mixture_spec.shape)}"
        )
    if masks.shape[0] != mixture_spec.shape[0] or masks.shape[2:] != mixture_spec.shape[1:]:
        raise ValueError(
            f"masks {tuple(masks.shape)} do not match mixture_spec {tuple(mixture_spec.shape)} "
            f"in batch, freq or frames"
        )
    if masks.is_complex():
        raise ValueError("masks must be real; complex masks would replace the mixture phase")
    # A real mask scales the magnitude and keeps the mixture phase (the paper's decoding).
    source_specs = mixture_spec.unsqueeze(1) * masks.to(mixture_spec.real.dtype)
    return stft.inverse(source_specs, length)
