"""Output heads: trunk features ``(batch, frames, in_features)`` -> one output tensor each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mstt import hookimpl
from mstt.features.rolls import N_KEYS
from mstt.registry import CLUSTER, KEYS, MASK, ROLL


@dataclass
class DeepClusteringOptions:
    """Options of the deep clustering head."""

    embedding_dim: int = 20


class _TanhUnitNorm(torch.autograd.Function):
    """``tanh(z) / |tanh(z)|`` over the last dim, with a fused backward.

    The DC embedding is the largest tensor of a step (batch x frames x freq x 20); autograd's
    tanh + normalize keeps several copies of it and makes ~12 passes over it in backward, this
    makes 5. Same values and gradients as ``F.normalize(torch.tanh(z), dim=-1)``.
    """

    EPS = 1e-12  # F.normalize's default

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(z)
        norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        scale = norm.clamp_min(_TanhUnitNorm.EPS)
        v = u / scale
        ctx.save_for_backward(u, v, scale, norm > _TanhUnitNorm.EPS)
        return v

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        u, v, scale, unclamped = ctx.saved_tensors
        # d(u/|u|)/du projects out the radial part; where |u| was clamped the map is u/eps.
        radial = (v * grad).sum(-1, keepdim=True) * unclamped
        return (grad - v * radial).div_(scale).mul_(1 - u * u)


def tanh_unit_norm(z: torch.Tensor) -> torch.Tensor:
    """``F.normalize(torch.tanh(z), dim=-1)`` with a cheaper backward (see :class:`_TanhUnitNorm`)."""
    return _TanhUnitNorm.apply(z)


class DeepClusteringHead(nn.Module):
    """A unit-norm embedding per time-frequency bin (linear, tanh, L2 normalisation)."""

    output = "embedding"

    def __init__(self, in_features: int, n_sources: int, n_freq: int, options: DeepClusteringOptions | None = None) -> None:
        super().__init__()
        options = options or DeepClusteringOptions()
        self.n_freq = n_freq
        self.embedding_dim = options.embedding_dim
        self.linear = nn.Linear(in_features, n_freq * options.embedding_dim)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features)`` -> embedding ``(batch, freq, frames, embedding_dim)``."""
        batch, frames, _ = trunk.shape
        v = tanh_unit_norm(self.linear(trunk).view(batch, frames, self.n_freq, self.embedding_dim))
        # A view: stored frame-major; the DC loss reads it in that order without a copy.
        return v.transpose(1, 2)


@dataclass
class MaskInferenceOptions:
    """Options of the mask inference head."""

    activation: str = "softmax"  # softmax across sources (masks sum to 1) or sigmoid per source


class MaskInferenceHead(nn.Module):
    """One mask per source and time-frequency bin."""

    output = "mask"

    def __init__(self, in_features: int, n_sources: int, n_freq: int, options: MaskInferenceOptions | None = None) -> None:
        super().__init__()
        options = options or MaskInferenceOptions()
        if options.activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be softmax or sigmoid, not '{options.activation}'")
        self.n_sources = n_sources
        self.n_freq = n_freq
        self.activation = options.activation
        self.linear = nn.Linear(in_features, n_sources * n_freq)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features)`` -> masks ``(batch, sources, freq, frames)`` in [0, 1]."""
        batch, frames, _ = trunk.shape
        logits = self.linear(trunk).view(batch, frames, self.n_sources, self.n_freq)
        masks = logits.softmax(dim=2) if self.activation == "softmax" else logits.sigmoid()
        return masks.permute(0, 2, 3, 1)


@dataclass
class PianoRollOptions:
    """Options of the transcription head."""

    hidden_size: int = 0  # 0: one linear layer; > 0: a hidden ReLU layer of that size first


class PianoRollHead(nn.Module):
    """Piano-roll logits per source: 88 keys from MIDI 21, one column per STFT frame."""

    output = "roll"

    def __init__(self, in_features: int, n_sources: int, n_freq: int, options: PianoRollOptions | None = None) -> None:
        super().__init__()
        options = options or PianoRollOptions()
        self.n_sources = n_sources
        layers: list[nn.Module] = []
        if options.hidden_size > 0:
            layers += [nn.Linear(in_features, options.hidden_size), nn.ReLU()]
            in_features = options.hidden_size
        layers.append(nn.Linear(in_features, n_sources * N_KEYS))
        self.net = nn.Sequential(*layers)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, in_features)`` -> logits ``(batch, sources, 88, frames)``."""
        batch, frames, _ = trunk.shape
        logits = self.net(trunk).view(batch, frames, self.n_sources, N_KEYS)
        return logits.permute(0, 2, 3, 1)


@hookimpl
def mstt_register_heads(register) -> None:
    """Register the three Cerberus heads."""
    register(
        "dc", DeepClusteringHead, output="embedding", loss="deep_clustering", options=DeepClusteringOptions,
        frame_local=True, stems=CLUSTER,
    )
    register(
        "mi", MaskInferenceHead, output="mask", loss="mask_inference", options=MaskInferenceOptions,
        frame_local=True, stems=MASK,
    )
    register(
        "tr",
        PianoRollHead,
        output="roll",
        loss="transcription",
        activation=torch.sigmoid,
        options=PianoRollOptions,
        frame_local=True,
        grid=KEYS,
        notes=ROLL,
    )
