"""Audio in and out of a separation: the input checked and downmixed, streams at another rate."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from scipy.signal import resample_poly

from mstt.constants import SILENT_RECORDING_PEAK, STREAM_BLOCK
from mstt.errors import MsttError

# The silence that is refused and the streaming block (mstt.constants says why).
SILENT_PEAK = SILENT_RECORDING_PEAK
BLOCK = STREAM_BLOCK

Sink = Callable[[list[str], np.ndarray], None]  # sink(stem names, stems (S, n) at the input rate)


def as_mono(waveform: Any) -> tuple[np.ndarray, int]:
    """Array or tensor ``(samples,)``, ``(channels, samples)`` or ``(samples, channels)`` -> (mono float32, channels)."""
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False), 1
    if x.ndim != 2:
        raise MsttError(f"waveform must be (samples,) or (channels, samples); got shape {x.shape}")
    if x.size == 0:  # (channels, 0) or (0, channels): no samples whichever axis is time (not a NaN mean)
        return np.zeros(0, np.float32), max(x.shape)
    if x.shape[0] > x.shape[1]:  # (samples, channels), as soundfile reads it
        x = x.T
    return x.mean(axis=0, dtype=np.float64).astype(np.float32), x.shape[0]


def audio_problem(samples: int, finite: bool, peak: float) -> str | None:
    """Why a recording cannot be separated (zero-length, NaN, silent), or None when it can."""
    if samples == 0:
        return "holds no samples (a zero-length recording); pass a recording with audio in it"
    if not finite:
        return "holds NaN or infinite samples; repair or re-export the recording"
    if peak < SILENT_PEAK:
        return "is silent (peak below -120 dBFS); there is nothing to separate"
    return None


def check_audio(x: np.ndarray, what: str) -> None:
    """Refuse empty, non-finite or silent audio with a one-line MsttError naming ``what``."""
    finite = bool(np.isfinite(x).all())
    problem = audio_problem(x.size, finite, float(np.abs(x).max()) if finite and x.size else 0.0)
    if problem:
        raise MsttError(f"{what}: {problem}")


def iter_blocks(x: np.ndarray, size: int = BLOCK) -> Iterator[np.ndarray]:
    """Consecutive blocks of a 1-D array."""
    for i in range(0, len(x), size):
        yield x[i : i + size]


class StreamResampler:
    """Polyphase resampling of a stream of blocks ``(..., n)``; output equals resample_poly of the whole."""

    def __init__(self, rate_from: int, rate_to: int) -> None:
        g = math.gcd(rate_from, rate_to)
        self.up, self.down = rate_to // g, rate_from // g
        self.identity = rate_from == rate_to
        # resample_poly's filter reaches 10 * max(up, down) upsampled samples each way; the
        # margin (a multiple of ``down``, so block starts stay on the output grid) covers it.
        reach = 10 * max(self.up, self.down) / self.up
        self.margin = math.ceil((reach + 1) / self.down) * self.down
        self.buf: np.ndarray | None = None
        self.start = 0  # input position of buf[..., 0]
        self.done = 0  # input position up to which output was returned

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """Add input samples; returns every output sample that no later input can change."""
        if self.identity:
            return block
        buf = block if self.buf is None else np.concatenate([self.buf, block], axis=-1)
        end = self.start + buf.shape[-1]
        upto = end if last else (end - self.margin) // self.down * self.down
        if upto <= self.done:
            self.buf = buf
            return buf[..., :0]
        y = resample_poly(buf, self.up, self.down, axis=-1)
        i0 = (self.done - self.start) * self.up // self.down
        i1 = -(-(upto - self.start) * self.up // self.down)
        keep = max(self.start, upto - self.margin)
        self.buf, self.start, self.done = buf[..., keep - self.start :], keep, upto
        return y[..., i0:i1].astype(np.float32, copy=False)


class ResampledReader:
    """Mono blocks ``(n,)`` at the input rate -> each chunk's samples at the model's rate, read only as far as needed."""

    def __init__(self, blocks: Iterable[np.ndarray], rate_from: int, rate_to: int) -> None:
        self.source = iter(blocks)
        self.resampler = StreamResampler(rate_from, rate_to)
        self.buf = np.zeros(0, np.float32)  # model-rate samples read and still needed
        self.start = 0  # model-rate position of buf[0]
        self.exhausted = False

    def chunks(self, bounds: list[tuple[int, int]]) -> Iterator[np.ndarray]:
        """Samples ``[a, b)`` at the model's rate ``(b - a,)`` for each chunk in turn; fewer where the source ends early."""
        for k, (a, b) in enumerate(bounds):
            self.read_until(b)
            yield self.buf[a - self.start : b - self.start]
            if k + 1 < len(bounds):
                # Chunks start in increasing order: what lies before the next one is never read again.
                cut = bounds[k + 1][0] - self.start
                self.buf, self.start = self.buf[cut:], self.start + cut

    def read_until(self, end: int) -> None:
        """Read and resample blocks until ``buf`` reaches model-rate position ``end`` or the source ends."""
        while self.start + len(self.buf) < end and not self.exhausted:
            block = next(self.source, None)
            self.exhausted = block is None
            more = np.zeros(0, np.float32) if self.exhausted else np.asarray(block, np.float32)
            self.buf = np.concatenate([self.buf, self.resampler.push(more, last=self.exhausted)])


class ResampledSink:
    """Stem blocks ``(S, n)`` at the model's rate -> ``sink(names, (S, m))`` at the input rate, cut to the recording's length."""

    def __init__(self, sink: Sink, names: list[str], rate_from: int, rate_to: int, samples: int) -> None:
        self.sink, self.names = sink, names
        self.resampler = StreamResampler(rate_from, rate_to)
        self.samples, self.written = samples, 0

    def push(self, block: np.ndarray, last: bool) -> None:
        """Resample ``block`` and hand on what no later block changes; ``last`` flushes the resampler."""
        out = self.resampler.push(block, last=last)
        # Resampling there and back rounds the length up: the recording keeps its own length.
        out = out[:, : max(0, self.samples - self.written)]
        self.written += out.shape[1]
        if out.shape[1]:
            self.sink(self.names, out)
