"""Transcription loss: piano-roll logits against the reference roll."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from mstt.errors import MsttError
from mstt.features.targets import Targets


@dataclass
class TranscriptionLossOptions:
    """Binary cross-entropy (default, stronger) or the paper's L2 on the sigmoid roll."""

    kind: str = "bce"  # bce | l2
    pos_weight: float = 1.0  # >1 counts active keys more: rolls are mostly zeros


def transcription_loss(logits: torch.Tensor, reference: torch.Tensor, kind: str = "bce", pos_weight: float = 1.0) -> torch.Tensor:
    """Mean loss over ``(batch, sources, 88, frames)`` logits and a {0, 1} reference."""
    reference = reference.to(logits.dtype)
    if kind == "bce":
        weight = torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, reference, pos_weight=weight)
    if kind == "l2":
        return (torch.sigmoid(logits) - reference).pow(2).mean()
    raise ValueError(f"kind must be bce or l2, not '{kind}'")


class TranscriptionLoss:
    """Loss for the ``tr`` head; reads ``targets.roll``."""

    target_field = "roll"

    def __init__(self, options: TranscriptionLossOptions | None = None) -> None:
        self.options = options or TranscriptionLossOptions()
        if self.options.kind not in ("bce", "l2"):
            raise ValueError(f"kind must be bce or l2, not '{self.options.kind}'")

    def __call__(self, logits: torch.Tensor, targets: Targets) -> torch.Tensor:
        """Scalar loss."""
        reference = getattr(targets, self.target_field)
        if reference is None:
            raise MsttError(
                f"the transcription loss needs '{self.target_field}' targets but the data gives none; "
                "use a dataset with MIDI or drop the head (weight 0)"
            )
        return transcription_loss(logits, reference, self.options.kind, self.options.pos_weight)
