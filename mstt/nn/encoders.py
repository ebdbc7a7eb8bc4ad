"""Trunk encoders: input features ``(batch, frames, n_freq)`` -> ``(batch, frames, out_features)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mstt import hookimpl


@dataclass
class BLSTMOptions:
    """Options of the recurrent trunk (the paper's: 4 layers, 300 units a direction, dropout 0.3)."""

    hidden_size: int = 300
    num_layers: int = 4
    dropout: float = 0.3
    bidirectional: bool = True
    # Under bf16 autocast the LSTM runs in bf16 too; true keeps it in float32 (the heads stay bf16).
    fp32: bool = False


class BLSTMEncoder(nn.Module):
    """Stacked (bi)directional LSTM over frames, the Chimera/Cerberus trunk."""

    def __init__(self, n_freq: int, options: BLSTMOptions | None = None) -> None:
        super().__init__()
        options = options or BLSTMOptions()
        if options.hidden_size < 1 or options.num_layers < 1:
            raise ValueError("hidden_size and num_layers must be at least 1")
        self.lstm = nn.LSTM(
            input_size=n_freq,
            hidden_size=options.hidden_size,
            num_layers=options.num_layers,
            dropout=options.dropout if options.num_layers > 1 else 0.0,
            bidirectional=options.bidirectional,
            batch_first=True,
        )
        # nn.LSTM applies dropout only between layers; the paper also drops the trunk output.
        self.dropout = nn.Dropout(options.dropout)
        self.out_features = options.hidden_size * (2 if options.bidirectional else 1)
        self.fp32 = options.fp32

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, n_freq)`` -> ``(batch, frames, out_features)``."""
        if self.fp32 and torch.is_autocast_enabled(features.device.type):
            with torch.autocast(device_type=features.device.type, enabled=False):
                output, _ = self.lstm(features.float())
        else:
            output, _ = self.lstm(features)
        return self.dropout(output)


@dataclass
class TCNOptions:
    """Options of the dilated temporal convolution trunk."""

    channels: int = 256
    blocks: int = 8
    kernel_size: int = 3
    dropout: float = 0.1


class _ResidualConvBlock(nn.Module):
    """Dilated non-causal 1-D convolution with a residual connection."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2)),
            nn.GroupNorm(1, channels),
            nn.PReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, frames)`` -> same shape."""
        return x + self.net(x)


class TCNEncoder(nn.Module):
    """Non-recurrent trunk: dilated convolutions over frames (receptive field doubles per block)."""

    def __init__(self, n_freq: int, options: TCNOptions | None = None) -> None:
        super().__init__()
        options = options or TCNOptions()
        if options.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd so that frames stay aligned")
        self.input = nn.Conv1d(n_freq, options.channels, 1)
        self.blocks = nn.Sequential(
            *[
                _ResidualConvBlock(options.channels, options.kernel_size, 2 ** (i % 6), options.dropout)
                for i in range(options.blocks)
            ]
        )
        self.out_features = options.channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, n_freq)`` -> ``(batch, frames, channels)``."""
        x = self.blocks(self.input(features.transpose(1, 2)))
        return x.transpose(1, 2)


@dataclass
class TransformerOptions:
    """Options of the self-attention trunk."""

    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    feedforward: int = 1024
    dropout: float = 0.1
    max_frames: int = 8192


class TransformerEncoder(nn.Module):
    """Non-recurrent trunk: a pre-norm Transformer encoder with learned frame positions."""

    def __init__(self, n_freq: int, options: TransformerOptions | None = None) -> None:
        super().__init__()
        options = options or TransformerOptions()
        if options.d_model % options.num_heads:
            raise ValueError("d_model must be divisible by num_heads")
        self.input = nn.Linear(n_freq, options.d_model)
        self.position = nn.Embedding(options.max_frames, options.d_model)
        layer = nn.TransformerEncoderLayer(
            options.d_model,
            options.num_heads,
            options.feedforward,
            options.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, options.num_layers, enable_nested_tensor=False)
        self.max_frames = options.max_frames
        self.out_features = options.d_model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(batch, frames, n_freq)`` -> ``(batch, frames, d_model)``."""
        frames = features.shape[1]
        if frames > self.max_frames:
            raise ValueError(
                f"{frames} frames exceed the transformer's max_frames={self.max_frames}; "
                "process shorter chunks or raise model.encoder.options.max_frames"
            )
        positions = torch.arange(frames, device=features.device)
        return self.layers(self.input(features) + self.position(positions))


@hookimpl
def mstt_register_encoders(register) -> None:
    """Register the built-in trunks."""
    register("blstm", BLSTMEncoder, options=BLSTMOptions)
    register("tcn", TCNEncoder, options=TCNOptions)
    register("transformer", TransformerEncoder, options=TransformerOptions)
