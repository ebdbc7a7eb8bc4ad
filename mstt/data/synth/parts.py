"""Pitched parts of the band: piano (comping + melody), guitar (strums, arpeggios, power chords), bass, strings,
and the other instruments (organ, brass, reeds, synths, ...) that accompany them without being a source."""

from __future__ import annotations

import numpy as np
import pretty_midi

from mstt.data.classes import OTHER
from mstt.data.synth.harmony import Chord, Part, Song, fold, nearest_pc, program_range, voice

# Melody rhythms for one bar: (onset beat, length in beats).
_RHYTHMS = {
    4: [[(0, 1), (1, 1), (2, 1.5), (3.5, 0.5)], [(0, 0.5), (0.5, 0.5), (1, 1), (2, 2)], [(0, 2), (2, 1), (3, 1)],
        [(0, 1.5), (1.5, 0.5), (2, 1), (3, 1)], [(0.5, 0.5), (1, 0.5), (1.5, 1.5), (3, 1)], [(0, 3), (3, 0.5), (3.5, 0.5)]],
    3: [[(0, 1), (1, 1), (2, 1)], [(0, 2), (2, 1)], [(0, 1.5), (1.5, 0.5), (2, 1)], [(0, 0.5), (0.5, 0.5), (1, 2)]],
}
# Guitar strum patterns in eighth-note slots: D = down stroke, U = up stroke, . = rest (previous strum rings).
_STRUMS = {4: ["D.D.D.D.", "D.DU.UDU", "D..UD.DU", "D.DUD.DU", "DUDUDUDU", "D...D.D."],
           3: ["D.D.D.", "D.DUDU", "D..UDU", "D.....", "D.DU.U"]}


def _pick(rng: np.random.Generator, options: list) -> object:
    """One element of a list (rng.choice would turn nested lists into arrays)."""
    return options[int(rng.integers(len(options)))]


def _styles(song: Song, rng: np.random.Generator, options: list[str]) -> dict[str, str]:
    """One style per section label, so a repeated section sounds the same."""
    return {lab: str(_pick(rng, options)) for lab in sorted({s.label for s in song.sections})}


def _level(song: Song, chord: Chord, base: float) -> float:
    """A velocity scaled by the chord's section intensity."""
    return base * song.sections[chord.section].intensity


def piano_part(song: Song, rng: np.random.Generator, program: int) -> pretty_midi.Instrument:
    """Voiced chords in one of several comping styles plus a motif-based right-hand melody."""
    lo, hi = program_range(program)
    part = Part(pretty_midi.Instrument(program=program, name="piano"), rng, song, lo, hi)
    beat, bpb = song.beat, song.beats_per_bar
    comp = _styles(song, rng, ["block", "half", "pulse", "offbeat", "broken"])
    melody_on = {lab: rng.random() < 0.75 for lab in comp}
    base = float(rng.uniform(55, 92))
    prev = 60.0
    for chord in song.chords:
        label = song.sections[chord.section].label
        n_beats = (chord.end - chord.start) / beat
        vel = _level(song, chord, base)
        notes = voice(chord.pcs, prev, max(lo, 48), min(hi, 76), int(rng.choice([3, 4])))
        prev = float(np.mean(notes))
        style = comp[label]
        if style == "block":
            hits = [(0.0, n_beats)]
        elif style == "half":
            step = 2.0 if bpb == 4 else 3.0
            hits = [(b, step) for b in np.arange(0, n_beats, step)]
        elif style == "pulse":
            hits = [(b, 0.9) for b in np.arange(0, n_beats, 1.0)]
        else:
            hits = []
        for onset, length in hits:
            accent = 1.0 if onset % bpb == 0 else 0.85
            for p in notes:
                part.add(p, chord.start + onset * beat, length * beat, vel * accent)
        if style == "offbeat":  # left-hand bass note on strong beats, chord on the others
            root = fold(chord.root + 36, max(lo, 33), 52)
            for b in np.arange(0, n_beats, 1.0):
                strong = b % bpb == 0 or (bpb == 4 and b % bpb == 2)
                if strong:
                    part.add(root, chord.start + b * beat, 0.95 * beat, vel)
                else:
                    for p in notes:
                        part.add(p, chord.start + b * beat, 0.8 * beat, vel * 0.8)
        elif style == "broken":
            arp = notes + [notes[0] + 12]
            for i, b in enumerate(np.arange(0, n_beats, 0.5)):
                part.add(arp[i % len(arp)] if (i // len(arp)) % 2 == 0 else arp[-1 - i % len(arp)],
                         chord.start + b * beat, 1.0 * beat, vel * (0.95 if i % 2 == 0 else 0.8))
    _melody(part, song, rng, melody_on, base + 10, max(lo, 62), min(hi, 88))
    return part.tidy()


def _melody(part: Part, song: Song, rng: np.random.Generator, on: dict[str, bool], base: float, lo: int,
            hi: int) -> None:
    """A random-walk melody over the scale whose strong-beat notes land on chord tones."""
    scale = song.scale_pcs()
    ladder = [p for p in range(lo, hi + 1) if p % 12 in scale]
    rhythms = {lab: _pick(rng, _RHYTHMS[song.beats_per_bar]) for lab in on}
    idx = len(ladder) // 2
    for bar in range(song.n_bars):
        section = song.section_of_bar(bar)
        if not on[section.label]:
            continue
        bar_start = bar * song.bar
        for onset, length in rhythms[section.label]:
            if rng.random() < 0.12:  # breathe
                continue
            idx = int(np.clip(idx + int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3])), 0, len(ladder) - 1))
            t = bar_start + onset * song.beat
            pitch = ladder[idx]
            if onset % 2 == 0:
                pitch = int(np.clip(nearest_pc(pitch, song.chord_at(t).pcs), lo, hi))
            quiet = 0.45 if rng.random() < 0.06 else 1.0  # the odd soft grace of a phrase
            part.add(pitch, t, length * song.beat, base * section.intensity * quiet)


def _guitar_shape(chord: Chord, lo: int, hi: int) -> list[int]:
    """An open-position-like guitar voicing: root, fifth, octave, third, fifth, top note."""
    root = fold(chord.root + 36, lo, lo + 11)
    third = (chord.pcs[1] - chord.root) % 12
    fifth = (chord.pcs[2] - chord.root) % 12
    top = 12 + (chord.pcs[3] - chord.root) % 12 if len(chord.pcs) > 3 else 24
    return [p for p in sorted({root, root + fifth, root + 12, root + 12 + third, root + 12 + fifth, root + top})
            if p <= hi]


def guitar_part(song: Song, rng: np.random.Generator, program: int) -> pretty_midi.Instrument:
    """Strummed chords, fingerpicked arpeggios or palm-muted power chords, one style per section label."""
    lo, hi = program_range(program)
    part = Part(pretty_midi.Instrument(program=program, name="guitar"), rng, song, lo, hi)
    beat, bpb = song.beat, song.beats_per_bar
    styles = _styles(song, rng, ["strum", "strum", "arpeggio", "power"])
    patterns = {lab: str(_pick(rng, _STRUMS[bpb])) for lab in styles}
    spread = float(rng.uniform(0.006, 0.018))  # seconds between strings within one strum
    base = float(rng.uniform(55, 95))
    low = int(rng.integers(40, 46))
    for chord in song.chords:
        label = song.sections[chord.section].label
        shape = _guitar_shape(chord, low, hi)
        vel = _level(song, chord, base)
        slots = int(round((chord.end - chord.start) / (beat / 2)))
        style = styles[label]
        if style == "strum":
            pattern = patterns[label]
            strokes = [(i, pattern[i % len(pattern)]) for i in range(slots) if pattern[i % len(pattern)] != "."]
            for j, (i, kind) in enumerate(strokes):
                nxt = strokes[j + 1][0] if j + 1 < len(strokes) else slots
                length = (nxt - i) * beat / 2
                strings = shape if kind == "D" else shape[::-1][: int(rng.integers(3, 5))]
                accent = 1.0 if kind == "D" else 0.75
                for k, p in enumerate(strings):
                    t = chord.start + i * beat / 2 + k * spread
                    part.add(p, t, length - k * spread, vel * accent * (1.0 - 0.03 * k))
        elif style == "arpeggio":
            order = [0, 2, 3, 4, 3, 2, 1, 3] if len(shape) > 4 else [0, 1, 2, 1]
            for i in range(slots):
                p = shape[order[i % len(order)] % len(shape)]
                part.add(p, chord.start + i * beat / 2, 1.5 * beat, vel * (1.0 if i % 2 == 0 else 0.8))
        else:
            power = [shape[0], shape[0] + 7, shape[0] + 12]
            for i in range(slots):
                accent = 1.0 if i % 2 == 0 else 0.7
                for k, p in enumerate(power):
                    part.add(p, chord.start + i * beat / 2 + k * 0.004, 0.4 * beat, vel * accent)
    return part.tidy()


def bass_part(song: Song, rng: np.random.Generator, program: int) -> pretty_midi.Instrument:
    """Roots, root-fifth patterns, walking lines, driving eighths or syncopated figures."""
    lo, hi = program_range(program)
    hi = min(hi, 55)
    part = Part(pretty_midi.Instrument(program=program, name="bass"), rng, song, lo, hi)
    beat, bpb = song.beat, song.beats_per_bar
    styles = _styles(song, rng, ["roots", "root5", "walking", "eighths", "synco"])
    base = float(rng.uniform(65, 105))
    scale = song.scale_pcs()
    prev = 40
    for ci, chord in enumerate(song.chords):
        nxt = song.chords[ci + 1] if ci + 1 < len(song.chords) else chord
        root = min((fold(chord.root + 24 + 12 * o, lo, hi) for o in range(3)), key=lambda p: abs(p - prev))
        prev = root
        fifth = root + 7 if root + 7 <= hi else root - 5
        n_beats = int(round((chord.end - chord.start) / beat))
        vel = _level(song, chord, base)
        style = styles[song.sections[chord.section].label]
        t0 = chord.start
        if style == "roots":
            step = 2 if bpb == 4 and n_beats >= 2 else max(n_beats, 1)
            for b in range(0, n_beats, step):
                part.add(root, t0 + b * beat, step * beat * 0.95, vel)
        elif style == "root5":
            for b in range(n_beats):
                p = root if b % bpb == 0 else (fifth if b % 2 == 0 or bpb == 3 else None)
                if p is not None:
                    part.add(p, t0 + b * beat, beat * 0.9, vel * (1.0 if p == root else 0.85))
        elif style == "walking":
            target = fold(nxt.root + 24, lo, hi)
            pitch = root
            for b in range(n_beats):
                if b == 0:
                    pitch = root
                elif b == n_beats - 1:
                    pitch = target + (1 if rng.random() < 0.5 else -1)  # chromatic approach
                else:
                    step = 1 if target >= pitch else -1
                    pitch += step
                    while pitch % 12 not in scale:
                        pitch += step
                part.add(int(np.clip(pitch, lo, hi)), t0 + b * beat, beat * 0.92, vel * (1.0 if b == 0 else 0.88))
        elif style == "eighths":
            for i in range(n_beats * 2):
                p = root + 12 if (i % 8 == 7 and root + 12 <= hi) else root
                part.add(p, t0 + i * beat / 2, beat * 0.45, vel * (1.0 if i % 2 == 0 else 0.8))
        else:
            for bar0 in range(0, n_beats, bpb):
                for onset, length, p in ((0, 1.4, root), (1.5, 0.5, root), (2, 1, fifth), (3.5, 0.5, root + 12)):
                    if bar0 + onset < n_beats and p <= hi:
                        part.add(p, t0 + (bar0 + onset) * beat, length * beat * 0.9, vel * (1.0 if onset == 0 else 0.85))
    return part.tidy()


def strings_part(song: Song, rng: np.random.Generator, program: int) -> pretty_midi.Instrument:
    """Sustained pads and slow lines; pizzicato, harp and timpani programs play idiomatic figures instead."""
    lo, hi = program_range(program)
    part = Part(pretty_midi.Instrument(program=program, name="strings"), rng, song, lo, hi)
    beat = song.beat
    if program == 45:
        options = ["pizz"]
    elif program == 46:
        options = ["harp"]
    elif program == 47:
        options = ["timpani"]
    else:
        options = ["pad", "pad", "line", "padline"]
    styles = _styles(song, rng, options)
    base = float(rng.uniform(50, 90))
    scale = song.scale_pcs()
    prev = float(np.clip(64, lo + 6, hi - 6))
    melody = float(np.clip(72, lo, hi))
    for chord in song.chords:
        style = styles[song.sections[chord.section].label]
        vel = _level(song, chord, base)
        span = chord.end - chord.start
        if style in ("pad", "padline"):
            n = 2 if hi - lo < 24 else int(rng.choice([3, 4]))
            notes = voice(chord.pcs, prev, max(lo, 43), min(hi, 84), n)
            prev = float(np.mean(notes))
            for p in notes:
                part.add(p, chord.start, span + 0.05, vel * 0.85)
        if style in ("line", "padline"):
            for h in np.arange(0, span / beat, 2.0):
                melody = float(np.clip(melody + rng.choice([-3, -2, -1, 0, 1, 2, 3]), max(lo, 55), hi))
                p = nearest_pc(int(melody), chord.pcs if h == 0 else scale)
                part.add(int(np.clip(p, lo, hi)), chord.start + h * beat, 2.0 * beat, vel)
        elif style == "pizz":
            notes = voice(chord.pcs, prev, max(lo, 48), min(hi, 79), 3)
            for i, b in enumerate(np.arange(0, span / beat, 1.0)):
                part.add(notes[i % len(notes)], chord.start + b * beat, 0.3 * beat, vel)
        elif style == "harp":
            notes = voice(chord.pcs, prev, max(lo, 48), min(hi, 72), 3)
            arp = notes + [p + 12 for p in notes]
            for i, b in enumerate(np.arange(0, span / beat, 0.5)):
                part.add(arp[i % len(arp)], chord.start + b * beat, 1.5 * beat, vel * 0.9)
        elif style == "timpani":
            root = fold(chord.root + 36, lo, hi)
            part.add(root, chord.start, beat, vel)
            if span / beat >= 3:
                part.add(fold(chord.pcs[2] + 36, lo, hi), chord.start + 2 * beat, beat, vel * 0.8)
    return part.tidy()


# GM families outside the five classes (pretty_midi's names, which Slakh's ``inst_class`` uses):
# accompaniment that no source owns.
OTHER_FAMILIES: tuple[str, ...] = ("Chromatic Percussion", "Organ", "Brass", "Reed", "Pipe", "Synth Lead", "Synth Pad")
OTHER_PROGRAMS: tuple[int, ...] = tuple(
    p for p in range(128) if pretty_midi.program_to_instrument_class(p) in OTHER_FAMILIES)
_LEAD_RANGES = {"Brass": (52, 84), "Reed": (49, 84), "Pipe": (60, 96), "Synth Lead": (48, 88)}


def other_part(song: Song, rng: np.random.Generator, program: int) -> pretty_midi.Instrument:
    """A non-source instrument: leads (brass, reed, pipe, synth lead) play a melody, organs and pads
    hold chords, chromatic percussion arpeggiates; a real song's sax solo over the band, in short."""
    family = pretty_midi.program_to_instrument_class(program)
    if family in _LEAD_RANGES:
        lo, hi = _LEAD_RANGES[family]
        part = Part(pretty_midi.Instrument(program=program, name=OTHER), rng, song, lo, hi)
        labels = sorted({s.label for s in song.sections})
        on = {lab: bool(rng.random() < 0.7) for lab in labels}
        if not any(on.values()):  # a lead that never plays would be a silent stem
            on[str(_pick(rng, labels))] = True
        _melody(part, song, rng, on, float(rng.uniform(60, 95)), lo, hi)
        return part.tidy()
    if family == "Chromatic Percussion":
        inst = piano_part(song, rng, program)
    else:  # organ and synth pads: sustained voicings, as a string pad
        inst = strings_part(song, rng, program)
    inst.name = OTHER
    return inst
