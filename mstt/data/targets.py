"""Piano-roll and onset targets on the STFT frame grid, and notes cut to an example window.

Notes are float64 arrays ``(n, 4)``: ``[onset_s, offset_s, midi_pitch, velocity]``. The frame
grid is torch.stft's with ``center=True``: ``frames = 1 + samples // hop`` and frame ``k`` is
centred on sample ``k * hop``, so an event at ``t`` seconds lands on frame
``round(t * sample_rate / hop)``.
"""

from __future__ import annotations

import numpy as np

N_KEYS = 88
LOWEST_KEY = 21  # A0, the piano's lowest key and row 0 of every roll
MIN_VELOCITY = 30  # quieter reference notes are dropped from frame targets (Cerberus / MT3)


def n_frames(samples: int, hop_length: int) -> int:
    """Frames of a ``samples``-long signal on the centred STFT grid."""
    return 1 + samples // hop_length


def empty_notes() -> np.ndarray:
    """A notes array with no notes: ``(0, 4)`` float64."""
    return np.zeros((0, 4), dtype=np.float64)


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
    roll = np.zeros((N_KEYS, frames), dtype=np.float32)
    onset = np.zeros((N_KEYS, frames), dtype=np.float32)
    if len(notes) == 0:
        return roll, onset
    duration = samples / sample_rate
    on, off, pitch, vel = notes[:, 0] - start, notes[:, 1] - start, notes[:, 2], notes[:, 3]
    key = np.rint(pitch).astype(np.int64) - LOWEST_KEY
    keep = (vel >= min_velocity) & (key >= 0) & (key < N_KEYS) & (on < duration)
    keep &= (off > 0) | (on >= 0)
    if not keep.any():
        return roll, onset
    rate = sample_rate / hop_length
    f_on = np.rint(on[keep] * rate).astype(np.int64)
    f_off = np.rint(off[keep] * rate).astype(np.int64)
    keys = key[keep]
    inside = on[keep] >= 0  # onsets before the window are not this window's onsets
    f_on_c = np.clip(f_on, 0, frames - 1)
    f_off_c = np.clip(np.maximum(f_off, f_on_c + 1), 0, frames)
    for k, a, b in zip(keys.tolist(), f_on_c.tolist(), f_off_c.tolist()):
        roll[k, a:b] = 1.0
    onset[keys[inside], f_on_c[inside]] = 1.0
    return roll, onset


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
