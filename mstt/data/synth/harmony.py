"""Song skeleton for the composer: tempo, meter, key, sections, chords, voicings and a humanising note writer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

SCALES: dict[str, tuple[int, ...]] = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}

# Common pop/rock/jazz progressions as 0-based scale degrees; chord qualities follow from the scale.
PROGRESSIONS: dict[str, list[tuple[int, ...]]] = {
    "major": [(0, 4, 5, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 4, 3), (0, 3, 0, 4), (5, 3, 0, 4),
              (0, 2, 3, 4), (0, 5, 1, 4), (3, 4, 2, 5), (0, 0, 3, 4)],
    "minor": [(0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4), (0, 0, 5, 4)],
}

# Playable register per GM program (lowest, highest MIDI pitch): a contrabass never plays violin notes.
_STRING_RANGES = {40: (55, 96), 41: (48, 86), 42: (36, 74), 43: (28, 57), 44: (40, 86), 45: (36, 84),
                  46: (36, 96), 47: (41, 57), 48: (40, 88), 49: (40, 88), 50: (40, 88), 51: (40, 88)}


def program_range(program: int) -> tuple[int, int]:
    """The (lowest, highest) pitch the composer writes for a GM program."""
    if program < 8:
        return (33, 96)
    if 24 <= program < 32:
        return (40, 86)
    if 32 <= program < 40:
        return (28, 60)
    return _STRING_RANGES.get(program, (36, 88))


@dataclass(frozen=True)
class Chord:
    """One chord of the progression: its span in seconds and its pitch classes (root first)."""

    start: float
    end: float
    pcs: tuple[int, ...]
    section: int  # index into Song.sections

    @property
    def root(self) -> int:
        """Root pitch class 0-11."""
        return self.pcs[0]


@dataclass(frozen=True)
class Section:
    """A run of bars that shares a label (A, B, ...): parts reuse their pattern for a label."""

    first_bar: int
    bars: int
    label: str
    intensity: float  # scales velocities: verses softer than choruses


@dataclass
class Song:
    """The shared skeleton every part of a track follows."""

    tempo: float
    beats_per_bar: int
    key: int
    mode: str
    seconds: float
    sections: list[Section]
    chords: list[Chord]

    @property
    def beat(self) -> float:
        """Seconds per beat."""
        return 60.0 / self.tempo

    @property
    def bar(self) -> float:
        """Seconds per bar."""
        return self.beat * self.beats_per_bar

    @property
    def n_bars(self) -> int:
        """Bars in the song (the last one may run past `seconds`)."""
        return sum(s.bars for s in self.sections)

    def section_of_bar(self, bar: int) -> Section:
        """The section a bar belongs to."""
        for section in self.sections:
            if bar < section.first_bar + section.bars:
                return section
        return self.sections[-1]

    def scale_pcs(self) -> set[int]:
        """Pitch classes of the key's scale."""
        return {(self.key + s) % 12 for s in SCALES[self.mode]}

    def chord_at(self, t: float) -> Chord:
        """The chord sounding at time t."""
        for chord in self.chords:
            if t < chord.end:
                return chord
        return self.chords[-1]


def make_song(rng: np.random.Generator, seconds: float) -> Song:
    """Draw tempo, meter, key, form and chord progression for one track."""
    beats_per_bar = 3 if rng.random() < 0.2 else 4
    tempo = float(rng.uniform(72, 150) if beats_per_bar == 4 else rng.uniform(84, 168))
    mode = "minor" if rng.random() < 0.4 else "major"
    key = int(rng.integers(12))
    sevenths = rng.random() < 0.3
    major_dominant = mode == "minor" and rng.random() < 0.6  # harmonic-minor V chord
    bar = 60.0 / tempo * beats_per_bar
    n_bars = int(np.ceil(seconds / bar)) + 1
    # Harmonic rhythm: mostly a chord a bar, two in slow 4/4, one per two bars in fast songs.
    if beats_per_bar == 4 and tempo < 110 and rng.random() < 0.35:
        per_bar = 2.0
    elif tempo > 125 and rng.random() < 0.3:
        per_bar = 0.5
    else:
        per_bar = 1.0
    options = PROGRESSIONS[mode]
    progs = {lab: options[int(rng.integers(len(options)))] for lab in "ABC"}
    sections: list[Section] = []
    first = 0
    while first < n_bars:
        length = int(rng.choice([4, 8]))
        label = "A" if not sections else str(rng.choice(["A", "B", "B", "C"]))
        sections.append(Section(first, length, label, float(rng.uniform(0.8, 1.1))))
        first += length
    scale = SCALES[mode]
    chords: list[Chord] = []
    span = bar / per_bar
    for si, section in enumerate(sections):
        prog = progs[section.label]
        n_chords = max(1, int(round(section.bars * per_bar)))
        for k in range(n_chords):
            degree = prog[k % len(prog)]
            size = 4 if sevenths and rng.random() < 0.7 else 3
            pcs = [(key + scale[(degree + 2 * i) % 7]) % 12 for i in range(size)]
            if major_dominant and degree == 4:
                pcs[1] = (pcs[0] + 4) % 12
            start = section.first_bar * bar + k * span
            chords.append(Chord(start, start + span, tuple(pcs), si))
    return Song(tempo, beats_per_bar, key, mode, seconds, sections, chords)


def fold(pitch: int, lo: int, hi: int) -> int:
    """Move a pitch by octaves into [lo, hi] (hi - lo >= 11)."""
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def voice(pcs: tuple[int, ...], target: float, lo: int, hi: int, n: int) -> list[int]:
    """A close voicing of n notes within [lo, hi] whose mean lies nearest `target` (smooth voice leading)."""
    best: list[int] = []
    best_cost = float("inf")
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for octave in range(lo // 12, hi // 12 + 1):
            notes = [octave * 12 + order[0]]
            for i in range(1, n):
                pc = order[i % len(order)]
                nxt = notes[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                notes.append(nxt)
            if notes[0] < lo or notes[-1] > hi:
                continue
            cost = abs(float(np.mean(notes)) - target)
            if cost < best_cost:
                best, best_cost = notes, cost
    if not best:  # register too narrow for n notes: fold each chord tone in
        best = sorted({fold(int(target) - int(target) % 12 + pc, lo, hi) for pc in pcs})[:n]
    return best


def nearest_pc(pitch: int, pcs: tuple[int, ...] | set[int]) -> int:
    """The pitch nearest `pitch` whose pitch class is in pcs."""
    for d in (0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, 6):
        if (pitch + d) % 12 in pcs:
            return pitch + d
    return pitch


class Part:
    """Writes humanised notes into one pretty_midi Instrument, keeping every note inside the song."""

    def __init__(self, inst: pretty_midi.Instrument, rng: np.random.Generator, song: Song, lo: int, hi: int):
        self.inst, self.rng, self.song, self.lo, self.hi = inst, rng, song, lo, hi
        self.jitter = float(rng.uniform(0.004, 0.012))  # timing spread of this player, seconds
        self.end = song.seconds - 0.02

    def add(self, pitch: int, start: float, dur: float, vel: float, jitter: bool = True) -> None:
        """Add a note (seconds) with timing, length and velocity jitter; notes past the end are cut."""
        rng = self.rng
        if jitter:
            start += float(np.clip(rng.normal(0.0, self.jitter), -3 * self.jitter, 3 * self.jitter))
        start = max(0.0, start)
        end = min(start + dur * float(rng.uniform(0.88, 1.0)), self.end)
        if start >= self.end - 0.05 or end - start < 0.03:
            return
        velocity = int(np.clip(round(vel + rng.normal(0.0, 5.0)), 1, 127))
        pitch = int(np.clip(pitch, 0, 127))
        self.inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=end))

    def tidy(self) -> pretty_midi.Instrument:
        """Sort notes and end each note before the next onset of the same pitch (no overlapping unisons)."""
        notes = sorted(self.inst.notes, key=lambda n: (n.pitch, n.start))
        kept: list[pretty_midi.Note] = []
        for note in notes:
            while kept and kept[-1].pitch == note.pitch and kept[-1].end > note.start - 0.005:
                kept[-1].end = note.start - 0.005
                if kept[-1].end - kept[-1].start >= 0.02:
                    break
                kept.pop()
            kept.append(note)
        self.inst.notes = sorted(kept, key=lambda n: (n.start, n.pitch))
        return self.inst
