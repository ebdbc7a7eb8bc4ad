"""Output heads: trunk features ``(batch, frames, in_features)`` -> one output tensor each."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from mstt import hookimpl
from mstt.features.rolls import N_KEYS


@dataclass
class DeepClusteringOptions:
    """Options of the deep clustering head."""

    embedding_dim: int = 20


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
        v = torch.tanh(self.linear(trunk)).view(batch, frames, self.n_freq, self.embedding_dim)
        return F.normalize(v, dim=-1).transpose(1, 2)


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
    register("dc", DeepClusteringHead, output="embedding", loss="deep_clustering", options=DeepClusteringOptions)
    register("mi", MaskInferenceHead, output="mask", loss="mask_inference", options=MaskInferenceOptions)
    register(
        "tr",
        PianoRollHead,
        output="roll",
        loss="transcription",
        activation=torch.sigmoid,
        options=PianoRollOptions,
    )
