"""STFT / iSTFT with torch.stft, and the model's input features (compressed, normalised)."""

from __future__ import annotations

import torch
from torch import nn

WINDOWS = {
    "hann": torch.hann_window,
    "hamming": torch.hamming_window,
    "blackman": torch.blackman_window,
}

COMPRESSIONS = ("none", "log", "sqrt")
NORMALIZATIONS = ("none", "utterance", "frequency")


class STFT(nn.Module):
    """Short-time Fourier transform on a centred frame grid: frames = 1 + samples // hop."""

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, window: str = "hann") -> None:
        super().__init__()
        if window not in WINDOWS:
            raise ValueError(f"unknown window '{window}'; choose one of {', '.join(WINDOWS)}")
        self.n_fft = n_fft
        self.hop_length = hop_length
        # A buffer, so the window follows the module to the GPU but is not a trained weight.
        self.register_buffer("window", WINDOWS[window](n_fft), persistent=False)

    @property
    def n_freq(self) -> int:
        """Number of frequency bins, n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        """Number of frames for a signal of ``samples`` samples."""
        return 1 + samples // self.hop_length

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform ``(..., samples)`` -> complex spectrogram ``(..., freq, frames)``."""
        shape = waveform.shape
        spec = torch.stft(
            waveform.reshape(-1, shape[-1]).float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex spectrogram ``(..., freq, frames)`` -> waveform ``(..., length)``."""
        shape = spec.shape
        wave = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return wave.reshape(*shape[:-2], length)


class FrontEnd(nn.Module):
    """Mixture waveform -> (complex STFT, magnitude, network input features)."""

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        window: str = "hann",
        compression: str = "log",
        normalization: str = "utterance",
    ) -> None:
        super().__init__()
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression '{compression}'; choose one of {', '.join(COMPRESSIONS)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization '{normalization}'; choose one of {', '.join(NORMALIZATIONS)}"
            )
        self.stft = STFT(n_fft, hop_length, window)
        self.compression = compression
        self.normalization = normalization

    @property
    def n_freq(self) -> int:
        """Number of frequency bins the encoder sees."""
        return self.stft.n_freq

    def features(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Magnitude ``(batch, freq, frames)`` -> encoder input ``(batch, frames, freq)``."""
        if self.compression == "log":
            x = torch.log1p(magnitude)  # log1p keeps silence at 0 rather than -inf
        elif self.compression == "sqrt":
            x = magnitude.sqrt()
        else:
            x = magnitude
        if self.normalization == "utterance":
            mean = x.mean(dim=(-2, -1), keepdim=True)
            std = x.std(dim=(-2, -1), keepdim=True)
            x = (x - mean) / (std + 1e-5)
        elif self.normalization == "frequency":
            mean = x.mean(dim=-1, keepdim=True)
            std = x.std(dim=-1, keepdim=True)
            x = (x - mean) / (std + 1e-5)
        return x.transpose(-1, -2)

    def forward(self, mixture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mixture ``(batch, samples)`` -> spec ``(batch, freq, frames)`` complex, magnitude, features."""
        spec = self.stft(mixture)
        magnitude = spec.abs()
        return spec, magnitude, self.features(magnitude)
