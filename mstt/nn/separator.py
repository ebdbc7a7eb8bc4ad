"""SeparatorModel: a whole waveform separator (e.g. asteroid's) behind the MultiTaskModel interface."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mstt.features import Targets
from mstt.nn.model import HeadSpec

OUTPUT = "stems"


class SeparatorModel(nn.Module):
    """Mixture waveform -> source waveforms, trained with a waveform loss by the same trainer."""

    def __init__(self, separator: nn.Module, spec: HeadSpec, sources: list[str], sample_rate: int) -> None:
        super().__init__()
        self.separator = separator
        # One pseudo-head, so the trainer, logs and evaluation treat it like any other model.
        self.specs = {spec.key: spec}
        self.sources = list(sources)
        self.sample_rate = sample_rate

    def forward(self, mixture: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mixture ``(batch, samples)`` -> ``{"stems": (batch, sources, samples)}``."""
        stems = self.separator(mixture)
        if stems.dim() == 2:  # some separators drop the batch axis for a batch of one
            stems = stems.unsqueeze(0)
        samples = mixture.shape[-1]
        # Separators with strided encoders may return a few samples more or less.
        if stems.shape[-1] > samples:
            stems = stems[..., :samples]
        elif stems.shape[-1] < samples:
            stems = nn.functional.pad(stems, (0, samples - stems.shape[-1]))
        return {OUTPUT: stems}

    def activated(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Separators have no activations to apply."""
        return dict(outputs)

    def losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The waveform loss of the stems against ``batch["sources"] (B, S, samples)``."""
        stems = self(batch["mixture"])[OUTPUT]
        targets = Targets(
            mixture_spec=torch.empty(0),
            source_spec=torch.empty(0),
            mixture_wave=batch["mixture"],
            source_wave=batch["sources"],
        )
        (key, spec), = self.specs.items()
        value = spec.loss(stems.float(), targets)
        return spec.weight * value, {key: value}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the separator."""
        return {"separator": sum(p.numel() for p in self.separator.parameters())}
