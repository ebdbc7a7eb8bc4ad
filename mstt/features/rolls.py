"""Notes <-> piano rolls on the STFT frame grid: the one definition every module uses.

Notes are float64 arrays ``(n, 4)``: ``[onset_s, offset_s, midi_pitch, velocity]``. Rolls are
``(88, frames)`` with row 0 = MIDI 21 (A0) and row 87 = MIDI 108 (C8). The grid is
torch.stft's with ``center=True``: ``frames = 1 + samples // hop`` and frame ``k`` is centred
on sample ``k * hop``, so an event at ``t`` seconds lands on frame ``round(t * sample_rate / hop)``
(halves round up).
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
    """A notes array holding no note: ``(0, 4)`` float64."""
    return np.zeros((0, 4), dtype=np.float64)


def note_frames(
    notes: np.ndarray, frames: int, frame_rate: float, min_velocity: float = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key row, onset frame, offset frame exclusive) of the notes that fall on the roll."""
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    pitch = np.round(notes[:, 2]).astype(np.int64)
    # Round half up, so a time exactly between two frames always lands on the later one.
    on = np.floor(notes[:, 0] * frame_rate + 0.5).astype(np.int64)
    off = np.maximum(on + 1, np.floor(notes[:, 1] * frame_rate + 0.5).astype(np.int64))
    keep = (
        (pitch >= LOWEST_KEY)
        & (pitch < LOWEST_KEY + N_KEYS)
        & (notes[:, 3] >= min_velocity)
        & (on < frames)
        & (off > 0)
    )
    # Onsets stay unclipped (possibly negative): a note begun before frame 0 has no onset here.
    return pitch[keep] - LOWEST_KEY, on[keep], np.minimum(off[keep], frames)


def notes_to_roll(notes: np.ndarray, frames: int, frame_rate: float, min_velocity: float = 0) -> np.ndarray:
    """Notes ``(n, 4)`` -> binary frame roll float32 ``(88, frames)``; notes below ``min_velocity`` left out."""
    roll = np.zeros((N_KEYS, frames), dtype=np.float32)
    for key, on, off in zip(*note_frames(notes, frames, frame_rate, min_velocity)):
        roll[key, max(on, 0) : off] = 1.0
    return roll


def notes_to_onset_roll(notes: np.ndarray, frames: int, frame_rate: float, min_velocity: float = 0) -> np.ndarray:
    """Notes ``(n, 4)`` -> binary onset roll float32 ``(88, frames)``: 1 at each note's onset frame."""
    roll = np.zeros((N_KEYS, frames), dtype=np.float32)
    keys, on, _ = note_frames(notes, frames, frame_rate, min_velocity)
    inside = on >= 0
    roll[keys[inside], on[inside]] = 1.0
    return roll
