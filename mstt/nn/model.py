"""MultiTaskModel: one front end, one trunk, a dict of heads, and their weighted losses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from mstt.features import FrontEnd, Targets, make_targets


@dataclass
class HeadSpec:
    """What the model needs to know about one head besides its module."""

    key: str  # the recipe's key (model.heads.<key>)
    name: str  # registry name
    output: str  # name of the head's tensor in the outputs
    weight: float
    loss: Callable[[torch.Tensor, Targets], torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor] | None = None
    decode: Callable[..., Any] | None = None  # notes decoder (see mstt.hookspecs.mstt_register_heads)
    train_frames: float = 1.0  # fraction of frames the loss sees per training step (frame_local heads)


def frames_kept(frames: int, fraction: float) -> int:
    """How many of ``frames`` a head trained on ``fraction`` of them sees (at least one)."""
    return max(1, round(fraction * frames))


def random_frames(frames: int, fraction: float, device: torch.device) -> torch.Tensor:
    """A sorted random subset of :func:`frames_kept` frame indices."""
    keep = frames_kept(frames, fraction)
    return torch.randperm(frames, device=device)[:keep].sort().values


def spaced_frames(frames: int, fraction: float, device: torch.device) -> torch.Tensor:
    """As many frame indices as :func:`random_frames` gives, evenly spaced: the same every call."""
    keep = frames_kept(frames, fraction)
    return torch.linspace(0, frames - 1, keep, device=device).round().long()


class MultiTaskModel(nn.Module):
    """Mixture waveform -> spectrogram -> trunk -> every head's output."""

    def __init__(
        self,
        front_end: FrontEnd,
        encoder: nn.Module,
        heads: dict[str, nn.Module],
        specs: dict[str, HeadSpec],
        sources: list[str],
        sample_rate: int,
    ) -> None:
        super().__init__()
        outputs = [spec.output for spec in specs.values()]
        if len(set(outputs)) != len(outputs):
            raise ValueError(f"two heads write the same output: {outputs}")
        self.front_end = front_end
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.specs = specs
        self.sources = list(sources)
        self.sample_rate = sample_rate

    def forward(
        self, mixture: torch.Tensor, head_frames: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Mixture ``(batch, samples)`` -> ``{"spec", "magnitude", <each head's output>}``.

        ``spec`` is complex ``(batch, freq, frames)``; head outputs are documented per head
        (e.g. ``mask (batch, sources, freq, frames)``, ``roll`` logits ``(batch, sources, 88, frames)``).
        ``head_frames`` maps a head's key to the frame indices it runs on (training only).
        """
        spec, magnitude, features = self.front_end(mixture)
        trunk = self.encoder(features)
        outputs: dict[str, torch.Tensor] = {"spec": spec, "magnitude": magnitude}
        for key, head in self.heads.items():
            frames = (head_frames or {}).get(key)
            outputs[self.specs[key].output] = head(trunk if frames is None else trunk[:, frames])
        return outputs

    def activated(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Outputs with each head's activation applied (e.g. roll logits -> probabilities)."""
        result = dict(outputs)
        for spec in self.specs.values():
            if spec.activation is not None:
                result[spec.output] = spec.activation(outputs[spec.output])
        return result

    def losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total loss and each head's unweighted loss for a training batch.

        ``batch`` holds ``mixture (B, samples)``, ``sources (B, S, samples)`` and, for
        transcription heads, ``roll``/``onset (B, S, 88, frames)``. A head with ``train_frames < 1``
        runs on, and is scored on, a random subset of the frames in training mode and the same
        number of evenly spaced frames in eval mode (a validation loss comparable from one
        validation to the next, at the training step's cost); ``forward`` always uses every frame.
        """
        mixture = batch["mixture"]
        n_frames = self.front_end.stft.frames(mixture.shape[-1])
        pick = random_frames if self.training else spaced_frames
        head_frames = {
            key: pick(n_frames, spec.train_frames, mixture.device)
            for key, spec in self.specs.items()
            if spec.train_frames < 1
        }
        # Through self(...), so that a compiled model (trainer.compile) compiles this call too.
        outputs = self(mixture, head_frames)
        # Targets are computed in float32 outside autocast: STFTs in bf16 lose too much.
        with torch.autocast(device_type=mixture.device.type, enabled=False):
            targets = make_targets(self.front_end.stft, batch)
        per_head: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=mixture.device)
        for key, spec in self.specs.items():
            frames = head_frames.get(key)
            head_targets = targets if frames is None else targets.at_frames(frames)
            value = spec.loss(outputs[spec.output].float(), head_targets)
            per_head[key] = value
            total = total + spec.weight * value
        return total, per_head

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters of the trunk and of each head."""
        counts = {"encoder": sum(p.numel() for p in self.encoder.parameters())}
        for key, head in self.heads.items():
            counts[f"heads.{key}"] = sum(p.numel() for p in head.parameters())
        return counts
