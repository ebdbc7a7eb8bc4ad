"""Overlapping chunks at the model's rate, and the cross-fades that stitch their estimates together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mstt.errors import MsttError
from mstt.evaluate.inference import chunk_bounds
from mstt.features.rolls import N_KEYS


def crossfade_weights(t: np.ndarray, k: int, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Weight of chunk ``k`` at positions ``t``: linear ramps over its overlaps, summing to 1 across chunks."""
    a, b = bounds[k]
    w = np.ones(t.shape, dtype=np.float32)
    if k > 0:
        overlap = bounds[k - 1][1] - a
        ramp = (t - a + 0.5) / overlap if overlap > 0 else (t >= a).astype(np.float32)
        w = np.minimum(w, np.clip(ramp, 0, 1))
    if k + 1 < len(bounds):
        overlap = b - bounds[k + 1][0]
        ramp = (b - t - 0.5) / overlap if overlap > 0 else (t < b).astype(np.float32)
        w = np.minimum(w, np.clip(ramp, 0, 1))
    return w.astype(np.float32)


def align_order(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Previous and current stems ``(S, n)`` on the same overlap -> ``perm`` with ``current[perm[j]]`` ~ ``previous[j]``."""
    p = previous / (np.linalg.norm(previous, axis=-1, keepdims=True) + 1e-8)
    c = current / (np.linalg.norm(current, axis=-1, keepdims=True) + 1e-8)
    rows, cols = linear_sum_assignment(p @ c.T, maximize=True)
    perm = np.empty(len(rows), dtype=np.int64)
    perm[rows] = cols
    return perm


@dataclass(frozen=True)
class ChunkPlan:
    """Where a recording's overlapping chunks lie at the model's rate, and the frame grid they share."""

    bounds: list[tuple[int, int]]  # [a, b) of each chunk, in model-rate samples
    total: int  # the recording's length at the model's rate
    hop: int

    @classmethod
    def for_recording(
        cls, samples: int, sample_rate: int, model_rate: int, hop: int, chunk_seconds: float, overlap_seconds: float
    ) -> ChunkPlan:
        """Chunks of ``chunk_seconds`` overlapping by ``overlap_seconds`` over ``samples`` at ``sample_rate``."""
        if chunk_seconds <= 0 or overlap_seconds < 0:
            raise MsttError(f"chunk length {chunk_seconds} s / overlap {overlap_seconds} s: need chunk > 0, overlap >= 0")
        # Whole hops, so that every chunk's frames fall on the whole recording's frame grid.
        chunk = max(2 * hop, int(round(chunk_seconds * model_rate / hop)) * hop)
        overlap = min(int(round(overlap_seconds * model_rate / hop)) * hop, chunk // 2 // hop * hop)
        total = -(-samples * model_rate // sample_rate)  # length at the model's rate, as resample_poly makes it
        return cls(chunk_bounds(total, chunk, overlap), total, hop)

    @property
    def n_frames(self) -> int:
        """Frames of the whole recording (torch.stft's centred grid)."""
        return 1 + self.total // self.hop

    def is_last(self, k: int) -> bool:
        """Whether chunk ``k`` is the last."""
        return k == len(self.bounds) - 1

    def settled(self, k: int) -> int:
        """Model-rate position before which no chunk after ``k`` adds anything."""
        return self.total if self.is_last(k) else self.bounds[k + 1][0]

    def weights(self, t: np.ndarray, k: int) -> np.ndarray:
        """Chunk ``k``'s cross-fade weights at model-rate positions ``t``."""
        return crossfade_weights(t, k, self.bounds)


class StemStitcher:
    """Chunk stems ``(S, b - a)`` at the model's rate -> the cross-faded whole, handed back as each stretch is final."""

    def __init__(self, plan: ChunkPlan, n_stems: int, unordered: bool) -> None:
        self.plan, self.unordered = plan, unordered
        self.acc = np.zeros((n_stems, 0), np.float32)  # cross-faded stems from ``start`` on; later chunks add to them
        self.start = 0

    def add(self, k: int, stems: np.ndarray) -> np.ndarray:
        """Chunk ``k``'s stems -> stems ``(S, n)`` from where the last call ended to where no later chunk reaches."""
        (a, b), s = self.plan.bounds[k], self.start
        grow = b - s - self.acc.shape[1]
        if grow > 0:
            self.acc = np.concatenate([self.acc, np.zeros((self.acc.shape[0], grow), np.float32)], axis=1)
        if self.unordered and k > 0 and self.plan.bounds[k - 1][1] > a:
            # Stems of no fixed order: this chunk's are put in the order of what the overlap holds so far.
            seen = self.acc[:, a - s : self.plan.bounds[k - 1][1] - s]
            stems = stems[align_order(seen, stems[:, : seen.shape[1]])]
        self.acc[:, a - s : b - s] += stems * self.plan.weights(np.arange(a, b), k)
        settled = self.plan.settled(k)
        done, self.acc, self.start = self.acc[:, : settled - s], self.acc[:, settled - s :], settled
        return done


class FrameStitcher:
    """Frame outputs ``(S, 88, frames)`` of each chunk, cross-faded onto the whole recording's frame grid."""

    def __init__(self, plan: ChunkPlan) -> None:
        self.plan = plan
        self.grids: dict[str, np.ndarray] = {}  # output name -> (S, 88, plan.n_frames)

    def add(self, k: int, outputs: dict[str, np.ndarray]) -> None:
        """Chunk ``k``'s frame outputs ``{name: (S, 88, chunk frames)}``; its frame ``i`` is frame ``a // hop + i``."""
        (a, b), hop, n_frames = self.plan.bounds[k], self.plan.hop, self.plan.n_frames
        f0 = a // hop
        for name, value in outputs.items():
            grid = self.grids.setdefault(name, np.zeros((value.shape[0], N_KEYS, n_frames), np.float32))
            # Frames centred past the chunk's end stem from the zeros a short chunk is padded with: dropped.
            part = value[..., : min(n_frames - f0, 1 + (b - a) // hop)]
            # Frame i is centred on sample i * hop: it takes that sample's weight.
            grid[..., f0 : f0 + part.shape[-1]] += part * self.plan.weights((f0 + np.arange(part.shape[-1])) * hop, k)
