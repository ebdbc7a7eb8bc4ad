"""GM drum-kit grooves with ghost notes, fills at section ends and crashes on section downbeats."""

from __future__ import annotations

import numpy as np
import pretty_midi

from mstt.data.synth.harmony import Part, Song

KICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 44, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)  # high to low, the order a fill runs down
KITS = (0, 8, 16, 24, 25, 32, 40)  # GM drum-kit presets (bank 128): standard, room, power, electronic, 808, jazz, brush

# Grooves on a 16th-note grid: {drum: [(step, relative velocity), ...]} for one bar.
_GROOVES_4 = {
    "rock": {KICK: [(0, 1.0), (8, 0.95), (10, 0.8)], SNARE: [(4, 1.0), (12, 1.0)],
             CLOSED_HAT: [(s, 0.9 if s % 4 == 0 else 0.7) for s in range(0, 16, 2)]},
    "pop16": {KICK: [(0, 1.0), (6, 0.8), (8, 0.95)], SNARE: [(4, 1.0), (12, 1.0)],
              CLOSED_HAT: [(s, 0.85 if s % 2 == 0 else 0.55) for s in range(16)]},
    "halftime": {KICK: [(0, 1.0), (3, 0.7), (10, 0.85)], SNARE: [(8, 1.0)],
                 CLOSED_HAT: [(s, 0.8 if s % 4 == 0 else 0.6) for s in range(0, 16, 2)]},
    "disco": {KICK: [(0, 1.0), (4, 1.0), (8, 1.0), (12, 1.0)], SNARE: [(4, 0.95), (12, 0.95)],
              OPEN_HAT: [(2, 0.8), (6, 0.8), (10, 0.8), (14, 0.8)], CLOSED_HAT: [(0, 0.6), (8, 0.6)]},
    "ride": {KICK: [(0, 0.9), (10, 0.7)], SNARE: [(4, 0.9), (12, 0.9)], PEDAL_HAT: [(4, 0.6), (12, 0.6)],
             RIDE: [(0, 0.9), (4, 0.8), (7, 0.6), (8, 0.9), (12, 0.8), (15, 0.6)]},
}
_GROOVES_3 = {
    "waltz": {KICK: [(0, 1.0)], SNARE: [(4, 0.8), (8, 0.8)], CLOSED_HAT: [(s, 0.7) for s in range(0, 12, 2)]},
    "rock3": {KICK: [(0, 1.0), (6, 0.8)], SNARE: [(4, 1.0), (10, 0.6)],
              CLOSED_HAT: [(s, 0.85 if s % 4 == 0 else 0.65) for s in range(0, 12, 2)]},
    "ride3": {KICK: [(0, 0.9)], SNARE: [(8, 0.8)], RIDE: [(0, 0.9), (4, 0.8), (7, 0.6), (8, 0.8)],
              PEDAL_HAT: [(4, 0.6), (8, 0.6)]},
}


def drum_part(song: Song, rng: np.random.Generator, kit: int | None = None) -> pretty_midi.Instrument:
    """A groove per section label, ghost notes on the snare, a fill before each new section."""
    if kit is None:
        kit = int(KITS[int(rng.integers(len(KITS)))])
    part = Part(pretty_midi.Instrument(program=kit, is_drum=True, name="drums"), rng, song, 0, 127)
    grooves = _GROOVES_4 if song.beats_per_bar == 4 else _GROOVES_3
    names = sorted(grooves)
    labels = sorted({s.label for s in song.sections})
    chosen = {lab: grooves[names[int(rng.integers(len(names)))]] for lab in labels}
    ghosts = rng.random() < 0.6
    base = float(rng.uniform(70, 110))
    sixteenth = song.beat / 4
    steps = song.beats_per_bar * 4
    for bar in range(song.n_bars):
        section = song.section_of_bar(bar)
        vel = base * section.intensity
        t_bar = bar * song.bar
        last_of_section = bar == section.first_bar + section.bars - 1
        fill_from = steps - (8 if rng.random() < 0.3 else 4) if last_of_section else steps
        if bar == section.first_bar and bar > 0 or (bar == 0 and rng.random() < 0.5):
            part.add(CRASH, t_bar, 0.5, vel)
        for drum, hits in chosen[section.label].items():
            for step, rel in hits:
                if step < fill_from:
                    part.add(drum, t_bar + step * sixteenth, 0.1, vel * rel)
        if ghosts:
            for step in range(1, min(fill_from, steps), 2):
                if rng.random() < 0.15:
                    part.add(SNARE, t_bar + step * sixteenth, 0.08, float(rng.uniform(14, 34)))
        if fill_from < steps:
            _fill(part, rng, t_bar, fill_from, steps, sixteenth, vel)
    return part.tidy()


def _fill(part: Part, rng: np.random.Generator, t_bar: float, first: int, steps: int, sixteenth: float,
          vel: float) -> None:
    """Snare and toms walking down the kit over the last beats of a bar, kick under the start."""
    count = steps - first
    toms = list(TOMS[int(rng.integers(0, 3)):])
    part.add(KICK, t_bar + first * sixteenth, 0.1, vel)
    for i in range(count):
        if rng.random() < 0.15:
            continue
        drum = SNARE if i < count // 4 else toms[min(len(toms) - 1, (i * len(toms)) // count)]
        crescendo = 0.7 + 0.3 * i / max(count - 1, 1)
        part.add(drum, t_bar + (first + i) * sixteenth, 0.1, vel * crescendo)
