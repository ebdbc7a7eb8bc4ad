"""Piano rolls <-> notes <-> MIDI.

Notes are float64 arrays ``(n, 4)`` of ``[onset_s, offset_s, midi_pitch, velocity]``. Rolls are
``(88, frames)`` with row 0 = MIDI 21 (A0) and row 87 = MIDI 108 (C8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pretty_midi
import torch

from mstt.data.classes import DEFAULT_CLASSES
from mstt.features.rolls import (  # noqa: F401  (re-exported: decoding's public names)
    LOWEST_KEY,
    N_KEYS,
    empty_notes,
    notes_to_onset_roll,
    notes_to_roll,
)

ArrayLike = np.ndarray | torch.Tensor
# Without the onset gate, an onset detected this soon after a frame run starts is taken as that
# run's own onset, not a repeat: splitting there would leave a stub note whose onset and the
# next note's fall in the same 50 ms scoring window (mir_eval's onset tolerance), one of them false.
OWN_ONSET_SECONDS = 0.05


def _as_roll(x: ArrayLike, name: str) -> np.ndarray:
    """A tensor or array ``(88, frames)`` as float64 numpy."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != N_KEYS:
        raise ValueError(f"{name} must be ({N_KEYS}, frames); got {x.shape}")
    return x


def _runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along frames of ``(keys, frames)``: (key, start, end exclusive), key-major."""
    padded = np.pad(active.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    keys, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same row-major order, so starts and ends pair up
    return keys, starts, ends


def _segments_with_onsets(
    start: int, end: int, onset_active: np.ndarray, rising: np.ndarray, require_onset: bool, own_frames: int
) -> list[int]:
    """Start frames of the notes inside one frame run ``[start, end)`` of one key.

    With ``require_onset`` (the Onsets-and-Frames gate) the run may begin a note only where an
    onset is detected within one frame of its start. Onsets in the run's first ``own_frames``
    frames are its own; each later one starts a new note.
    """
    starts = []
    if not require_onset or onset_active[max(start - 1, 0) : start + 2].any():
        starts.append(start)
    first = start + own_frames
    for t in np.flatnonzero(rising[first:end]) + first:  # rising edges of the onset roll
        starts.append(int(t))
    return starts


@dataclass(frozen=True)
class NoteDecoding:
    """How notes are read from a probability roll: where they start, how long they hold, the shortest kept.

    A note starts where a key's probability passes ``threshold`` and lasts while it stays above
    ``hold_threshold`` (hysteresis, as in Onsets and Frames and Basic Pitch). Without a hold
    threshold a dip below ``threshold`` ends the note, so a held note whose probability wavers
    around the threshold comes out as several short notes: each a false onset.
    """

    threshold: float = 0.4
    hold_threshold: float | None = None  # None: the same as threshold (no hysteresis)
    min_frames: int = 2

    @classmethod
    def from_config(cls, config: Any, threshold: float | None = None) -> NoteDecoding:
        """The recipe's ``eval.note_threshold``, ``eval.note_hold_threshold`` and ``eval.min_note_frames``.

        ``threshold`` (e.g. ``mstt separate --threshold``) replaces the start threshold; a hold
        threshold above it is lowered to it, so that a lower threshold never drops notes.
        """
        start = float(config.eval.note_threshold if threshold is None else threshold)
        hold = config.eval.get("note_hold_threshold")
        hold = None if hold is None else min(float(hold), start)
        return cls(start, hold, int(config.eval.min_note_frames))

    @property
    def hold(self) -> float:
        """The threshold a note's frames must stay above."""
        return self.threshold if self.hold_threshold is None else self.hold_threshold


def _segments(
    keys: np.ndarray, starts: np.ndarray, ends: np.ndarray, onset_probabilities: ArrayLike | None,
    onset_threshold: float, shape: tuple[int, ...], require_onset: bool, own_frames: int,
) -> list[tuple[int, int, int]]:
    """(key, start, end) of each note candidate: the frame runs, split at onsets when given."""
    if onset_probabilities is None:
        return [(int(k), int(s), int(e)) for k, s, e in zip(keys, starts, ends)]
    onsets = _as_roll(onset_probabilities, "onset_probabilities")
    if onsets.shape != shape:
        raise ValueError(f"onset_probabilities {onsets.shape} differ from probabilities {shape}")
    onset_active = onsets > onset_threshold
    rising = np.diff(np.pad(onset_active.astype(np.int8), ((0, 0), (1, 0))), axis=1) == 1
    segments = []
    for k, s, e in zip(keys, starts, ends):
        note_starts = _segments_with_onsets(int(s), int(e), onset_active[k], rising[k], require_onset, own_frames)
        bounds = note_starts + [int(e)]
        segments.extend((int(k), a, b) for a, b in zip(bounds[:-1], bounds[1:]))
    return segments


def roll_to_notes(
    probabilities: ArrayLike,
    frame_rate: float,
    threshold: float = 0.4,
    min_frames: int = 2,
    onset_probabilities: ArrayLike | None = None,
    onset_threshold: float = 0.5,
    hold_threshold: float | None = None,
    require_onset: bool = True,
) -> np.ndarray:
    """Frame probabilities ``(88, frames)`` (and optional onset probabilities) -> notes ``(n, 4)``.

    A note is a run of frames above ``hold_threshold`` (default: ``threshold``) that passes
    ``threshold`` somewhere and lasts at least ``min_frames``. With onset probabilities an onset
    detected inside a run splits it; with ``require_onset`` too (the Onsets-and-Frames rule) a
    run may start a note only where an onset is detected at that key within one frame. Without
    it every run starts a note, and an onset within :data:`OWN_ONSET_SECONDS` of a run's start
    does not split it. Velocity is the note's mean frame probability scaled to 1..127.
    """
    probs = _as_roll(probabilities, "probabilities")
    hold = threshold if hold_threshold is None else min(hold_threshold, threshold)
    keys, starts, ends = _runs(probs > hold)
    if hold < threshold:  # hysteresis: a run counts only where it reaches the start threshold
        peaks = np.array([probs[k, s:e].max() for k, s, e in zip(keys, starts, ends)], dtype=np.float64)
        reached = peaks > threshold if len(peaks) else np.zeros(0, bool)
        keys, starts, ends = keys[reached], starts[reached], ends[reached]
    rows = []
    # The gate already looks one frame past the start; without it a late detection can come later.
    own_frames = 2 if require_onset else max(2, int(np.ceil(OWN_ONSET_SECONDS * frame_rate - 1e-9)))
    segments = _segments(keys, starts, ends, onset_probabilities, onset_threshold, probs.shape, require_onset, own_frames)
    for k, s, e in segments:
        if e - s < min_frames:
            continue
        velocity = float(np.clip(np.round(probs[k, s:e].mean() * 127), 1, 127))
        rows.append((s / frame_rate, e / frame_rate, float(k + LOWEST_KEY), velocity))
    if not rows:
        return empty_notes()
    notes = np.asarray(rows, dtype=np.float64)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def decode_notes(probabilities: ArrayLike, frame_rate: float, decoding: NoteDecoding,
                 onset_probabilities: ArrayLike | None = None, onset_threshold: float = 0.5,
                 require_onset: bool = True) -> np.ndarray:
    """:func:`roll_to_notes` with the thresholds of ``decoding``."""
    return roll_to_notes(probabilities, frame_rate, decoding.threshold, decoding.min_frames,
                         onset_probabilities, onset_threshold, decoding.hold_threshold, require_onset)


def notes_to_midi(
    notes_by_source: dict[str, np.ndarray],
    programs: dict[str, int] | None = None,
    drums: set[str] | None = None,
) -> pretty_midi.PrettyMIDI:
    """One named instrument per source; GM program from ``programs`` or the source class's default.

    A source without a given program and not in :data:`mstt.data.classes.DEFAULT_CLASSES` gets
    program 0. ``drums`` names the drum sources; by default those whose class ``is_drum``.
    """
    programs = programs or {}
    if drums is None:
        drums = {name for name, cls in DEFAULT_CLASSES.items() if cls.is_drum}
    # 960 ticks a beat at 120 bpm is about 0.5 ms a tick, far below the 50 ms onset tolerance.
    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    for name, notes in notes_by_source.items():
        cls = DEFAULT_CLASSES.get(name)
        program = programs.get(name, cls.default_program if cls is not None else 0)
        if not 0 <= program <= 127:
            raise ValueError(f"source '{name}': GM program {program} is outside 0..127")
        instrument = pretty_midi.Instrument(program=int(program), is_drum=name in drums, name=name)
        for onset, offset, pitch, velocity in np.asarray(notes, dtype=np.float64).reshape(-1, 4):
            p = int(round(pitch))
            if not 0 <= p <= 127 or offset <= onset:
                continue
            v = int(np.clip(round(velocity), 1, 127))
            instrument.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=float(onset), end=float(offset)))
        instrument.notes.sort(key=lambda n: (n.start, n.pitch))
        midi.instruments.append(instrument)
    return midi


def midi_to_notes(instrument: pretty_midi.Instrument) -> np.ndarray:
    """A pretty_midi instrument -> notes ``(n, 4)`` sorted by onset, then pitch."""
    if not instrument.notes:
        return empty_notes()
    notes = np.asarray([(n.start, n.end, n.pitch, n.velocity) for n in instrument.notes], dtype=np.float64)
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]
