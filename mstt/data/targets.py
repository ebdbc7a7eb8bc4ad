"""Piano-roll and onset targets on the STFT frame grid, and notes cut to an example window.

Notes are float64 arrays ``(n, 4)``: ``[onset_s, offset_s, midi_pitch, velocity]``. The frame
grid is torch.stft's with ``center=True``: ``frames = 1 + samples // hop`` and frame ``k`` is
centred on sample ``k * hop``, so an event at ``t`` seconds lands on frame
``round(t * sample_rate / hop)``.
"""

from __future__ import annotations

import numpy as np

from mstt.features.rolls import (  # noqa: F401  (re-exported for the adapters)
    LOWEST_KEY,
    MIN_VELOCITY,
    N_KEYS,
    empty_notes,
    n_frames,
    notes_to_onset_roll,
    notes_to_roll,
)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Notes ``(n, 4)`` sorted by onset, then pitch, with offsets never before onsets."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4).copy()
    notes[:, 1] = np.maximum(notes[:, 1], notes[:, 0])
    order = np.lexsort((notes[:, 2], notes[:, 0]))
    return notes[order]


def window_notes(notes: np.ndarray, start: float, duration: float) -> np.ndarray:
    """Notes sounding in ``[start, start + duration)``, shifted to the window and clipped to it.

    A note that began before the window starts at 0 in the result; one that outlasts it ends
    at ``duration``. Returns ``(m, 4)`` float64.
    """
    if len(notes) == 0:
        return empty_notes()
    on, off = notes[:, 0], notes[:, 1]
    end = start + duration
    keep = (on < end) & ((off > start) | (on >= start))
    out = notes[keep].copy()
    out[:, 0] = np.clip(out[:, 0] - start, 0.0, duration)
    out[:, 1] = np.clip(out[:, 1] - start, out[:, 0], duration)
    return out


def rolls(
    notes: np.ndarray,
    start: float,
    samples: int,
    sample_rate: int,
    hop_length: int,
    min_velocity: int = MIN_VELOCITY,
) -> tuple[np.ndarray, np.ndarray]:
    """Frame and onset rolls of one source for the window of ``samples`` from ``start`` seconds.

    Returns two float32 arrays ``(88, frames)``. Notes with velocity below ``min_velocity`` and
    pitches outside MIDI 21..108 are left out. A note is active from its onset frame up to,
    not including, its offset frame, and on at least its onset frame; its onset is marked
    only when it falls inside the window.
    """
    frames = n_frames(samples, hop_length)
    rate = sample_rate / hop_length
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    # Only notes that start before the window ends; shifted so the window starts at 0.
    shifted = notes[notes[:, 0] - start < samples / sample_rate].copy()
    shifted[:, :2] -= start
    return (
        notes_to_roll(shifted, frames, rate, min_velocity),
        notes_to_onset_roll(shifted, frames, rate, min_velocity),
    )


def stacked_rolls(
    notes_per_source: list[np.ndarray],
    start: float,
    samples: int,
    sample_rate: int,
    hop_length: int,
    min_velocity: int = MIN_VELOCITY,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rolls` for every source: two float32 arrays ``(n_sources, 88, frames)``."""
    pairs = [rolls(n, start, samples, sample_rate, hop_length, min_velocity) for n in notes_per_source]
    frames = n_frames(samples, hop_length)
    if not pairs:
        empty = np.zeros((0, N_KEYS, frames), dtype=np.float32)
        return empty, empty.copy()
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
