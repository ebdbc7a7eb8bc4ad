"""Mask inference loss: masked mixture magnitude against (phase-sensitive) source magnitude."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mstt.features.targets import Targets


@dataclass
class MaskInferenceLossOptions:
    """Distance (L1 as Chimera++, or L2) and target (truncated phase-sensitive or magnitude)."""

    norm: str = "l1"  # l1 | l2
    target: str = "psa"  # psa (truncated phase-sensitive approximation) | magnitude


def mask_inference_loss(
    masks: torch.Tensor, mixture_mag: torch.Tensor, target: torch.Tensor, norm: str = "l1"
) -> torch.Tensor:
    """Mean distance between ``masks * |X|`` and ``target``; masks/target ``(batch, sources, freq, frames)``."""
    estimate = masks * mixture_mag.unsqueeze(1)
    if norm == "l1":
        return (estimate - target).abs().mean()
    if norm == "l2":
        return (estimate - target).pow(2).mean()
    raise ValueError(f"norm must be l1 or l2, not '{norm}'")


class MaskInferenceLoss:
    """Loss for the ``mi`` head."""

    def __init__(self, options: MaskInferenceLossOptions | None = None) -> None:
        self.options = options or MaskInferenceLossOptions()
        if self.options.target not in ("psa", "magnitude"):
            raise ValueError(f"target must be psa or magnitude, not '{self.options.target}'")
        if self.options.norm not in ("l1", "l2"):
            raise ValueError(f"norm must be l1 or l2, not '{self.options.norm}'")

    def __call__(self, masks: torch.Tensor, targets: Targets) -> torch.Tensor:
        """Scalar loss."""
        if self.options.target == "psa":
            target = targets.phase_sensitive(truncate=True)
        else:
            target = targets.source_mag
        return mask_inference_loss(masks, targets.mixture_mag, target.to(masks.dtype), self.options.norm)
