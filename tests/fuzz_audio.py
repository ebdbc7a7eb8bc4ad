"""Hypothesis strategies for the fuzz suites: random recordings as numpy arrays.

A drawn recording is built with numpy from a few drawn parameters (length, channels, rate,
dtype, kind of signal, NaN/Inf, layout) rather than element by element: hypothesis draws
the interesting corners (0 samples, 1 sample, 8 channels, 192 kHz, int16 full scale, a
single NaN) and numpy makes seconds of audio in microseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st


def examples(n: int) -> int:
    """``n`` examples per target, times $MSTT_FUZZ_SCALE (default 1: the suite stays within a minute on 2 cores)."""
    return max(1, round(n * float(os.environ.get("MSTT_FUZZ_SCALE", "1"))))


COMMON_RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000]
RATES = st.one_of(st.sampled_from(COMMON_RATES), st.integers(8000, 192000))
DTYPES = ("int16", "int32", "float32", "float64")
KINDS = ("noise", "tone", "silence", "dc", "clipped", "impulse", "quiet", "antiphase")
SPECIALS = (None, "nan", "inf", "-inf")


@dataclass
class Recording:
    """A drawn recording: ``x`` as given to the code under test, and what it was made of."""

    x: np.ndarray  # (samples,), (channels, samples) or (samples, channels)
    rate: int
    samples: int
    channels: int
    layout: str  # mono | channels_first | samples_first
    kind: str
    special: str | None

    def __repr__(self) -> str:  # hypothesis prints this for a failing example
        return (f"Recording(samples={self.samples}, channels={self.channels}, rate={self.rate}, "
                f"dtype={self.x.dtype}, layout={self.layout}, kind={self.kind}, special={self.special})")

    def channel_major(self) -> np.ndarray:
        """float64 ``(channels, samples)``."""
        x = self.x.astype(np.float64)
        if self.layout == "mono":
            return x[None]
        return x if self.layout == "channels_first" else x.T


def signal(kind: str, samples: int, channels: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """float64 ``(channels, samples)`` in [-1, 1] of one kind."""
    t = np.arange(samples) / rate
    if kind == "noise":
        return rng.uniform(-1, 1, (channels, samples))
    if kind == "tone":
        freqs = rng.uniform(20, rate / 2, (channels, 1))
        return 0.8 * np.sin(2 * np.pi * freqs * t)
    if kind == "silence":
        return np.zeros((channels, samples))
    if kind == "dc":
        return np.full((channels, samples), rng.uniform(-1, 1))
    if kind == "clipped":
        return np.clip(20 * rng.standard_normal((channels, samples)), -1, 1)
    if kind == "impulse":
        x = np.zeros((channels, samples))
        if samples:
            x[:, rng.integers(samples)] = 1.0
        return x
    if kind == "quiet":  # around -120 dBFS: at the edge of what counts as silence
        return rng.uniform(-1, 1, (channels, samples)) * 10 ** rng.uniform(-7, -5)
    if kind == "antiphase":  # channels that cancel in the downmix
        x = rng.uniform(-1, 1, (1, samples))
        return np.concatenate([x, -x] * (channels // 2) + [np.zeros((channels % 2, samples))])
    raise ValueError(kind)


def to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """[-1, 1] floats -> the dtype, integers at full scale (as PCM files hold them)."""
    if dtype.startswith("int"):
        full = np.iinfo(dtype).max
        return np.clip(np.rint(x * full), -full - 1, full).astype(dtype)
    return x.astype(dtype)


@st.composite
def recordings(draw, max_seconds: float = 3.0, max_channels: int = 8, dtypes=DTYPES) -> Recording:
    """A recording of 0 samples to ``max_seconds``, 1 to ``max_channels`` channels, 8-192 kHz."""
    rate = draw(RATES, label="rate")
    channels = draw(st.integers(1, max_channels), label="channels")
    samples = draw(st.one_of(st.integers(0, 2048), st.integers(0, int(max_seconds * rate))), label="samples")
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    kind = draw(st.sampled_from(KINDS), label="kind")
    special = draw(st.sampled_from(SPECIALS), label="special") if dtype.startswith("float") else None
    layout = draw(st.sampled_from(["mono", "channels_first", "samples_first"] if channels == 1
                                  else ["channels_first", "samples_first"]), label="layout")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    x = to_dtype(signal(kind, samples, channels, rate, rng), dtype)
    if special and samples:
        spots = rng.integers(0, samples, size=draw(st.integers(1, 3), label="bad samples"))
        x[rng.integers(0, channels), spots] = float(special)
    if layout == "mono":
        x = x[0]
    elif layout == "samples_first":
        x = np.ascontiguousarray(x.T)
    return Recording(x, rate, samples, channels, layout, kind, special)
