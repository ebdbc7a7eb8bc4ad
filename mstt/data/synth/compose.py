"""The composer: one seeded band arrangement per (seed, track index), as pretty_midi objects."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pretty_midi

from mstt.data.classes import DEFAULT_CLASSES, OTHER, class_of
from mstt.data.synth.drums import drum_part
from mstt.data.synth.harmony import Song, make_song
from mstt.data.synth.parts import OTHER_PROGRAMS, bass_part, guitar_part, other_part, piano_part, strings_part

# Bump when the music or the rendering changes, so cached sets are regenerated.
GENERATOR_VERSION = 1

PART_WRITERS: dict[str, Callable[[Song, np.random.Generator, int], pretty_midi.Instrument]] = {
    "piano": piano_part,
    "guitar": guitar_part,
    "bass": bass_part,
    "strings": strings_part,
}
SOURCES: tuple[str, ...] = ("piano", "guitar", "bass", "drums", "strings")
# Programs of extra parts: a second part of a class (another guitar or bass, a harp over the strings) or an
# instrument of no class (organ, brass, reeds, synths). Drums stay one kit.
EXTRA_PROGRAMS: tuple[int, ...] = tuple(sorted(
    {p for name, cls in DEFAULT_CLASSES.items() if not cls.is_drum for p in cls.programs} | set(OTHER_PROGRAMS)))


@dataclass
class Arrangement:
    """A composed track: the song skeleton, one instrument per requested source in order, then any others."""

    song: Song
    sources: list[str]
    instruments: list[pretty_midi.Instrument]

    def to_midi(self, only: int | None = None) -> pretty_midi.PrettyMIDI:
        """All instruments (or just instrument `only`) as a PrettyMIDI with tempo, meter and key."""
        song = self.song
        pm = pretty_midi.PrettyMIDI(initial_tempo=song.tempo)
        pm.time_signature_changes.append(pretty_midi.TimeSignature(song.beats_per_bar, 4, 0.0))
        pm.key_signature_changes.append(
            pretty_midi.KeySignature(song.key + (12 if song.mode == "minor" else 0), 0.0))
        chosen = self.instruments if only is None else [self.instruments[only]]
        pm.instruments.extend(chosen)
        return pm


def _rng(seed: int, index: int, stream: str) -> np.random.Generator:
    """An independent generator per (seed, track, stream): parts do not shift when other sources change."""
    return np.random.default_rng([int(seed), int(index), zlib.crc32(stream.encode())])


def compose(sources: Sequence[str], seconds: float, seed: int, index: int, extra: int = 0) -> Arrangement:
    """Compose track `index` of the set drawn with `seed`: same arguments, same notes.

    ``extra`` > 0 adds 0..extra parts after the sources, each with a random program of
    :data:`EXTRA_PROGRAMS`, named by its class (:data:`OTHER` for none), as Slakh2100 songs hold several
    guitars next to an organ; the sources' parts do not change with it (each has its own stream).
    """
    song = make_song(_rng(seed, index, "song"), seconds)
    instruments = []
    for name in sources:
        rng = _rng(seed, index, name)
        if DEFAULT_CLASSES[name].is_drum:
            inst = drum_part(song, rng)
        else:
            programs = DEFAULT_CLASSES[name].programs
            inst = PART_WRITERS[name](song, rng, int(programs[int(rng.integers(len(programs)))]))
        instruments.append(inst)
    names = list(sources)
    if extra > 0:
        count = int(_rng(seed, index, "extra").integers(0, extra + 1))
        for k in range(count):
            rng = _rng(seed, index, f"extra{k}")
            program = int(EXTRA_PROGRAMS[int(rng.integers(len(EXTRA_PROGRAMS)))])
            owner = class_of(program, False)  # None: no class claims it, so it is the catch-all source's
            write = other_part if owner is None else PART_WRITERS[owner]
            instruments.append(write(song, rng, program))
            names.append(owner or OTHER)  # the name metadata.yaml records
    return Arrangement(song, names, instruments)
