"""Instrument classes: which General-MIDI programs (or drums) belong to each source class."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceClass:
    """A source class as the paper groups Slakh stems: GM program range or the drum kit."""

    name: str
    programs: tuple[int, ...]  # GM programs 0-127 that belong to the class
    is_drum: bool = False
    default_program: int = 0  # program of the class's track in MIDI files mstt writes


# As in the paper (docs/paper.md): piano 0-7, guitar 24-31, bass 32-39, drums = is_drum, strings 40-51.
DEFAULT_CLASSES: dict[str, SourceClass] = {
    "piano": SourceClass("piano", tuple(range(0, 8)), default_program=0),
    "guitar": SourceClass("guitar", tuple(range(24, 32)), default_program=25),
    "bass": SourceClass("bass", tuple(range(32, 40)), default_program=33),
    "drums": SourceClass("drums", (), is_drum=True, default_program=0),
    "strings": SourceClass("strings", tuple(range(40, 52)), default_program=48),
}


# The catch-all source (Demucs' "other" stem): when a recipe lists it among its sources it owns
# every stem that no other source of the recipe owns (organ, brass, reeds, synths, choir, and the
# classes the recipe leaves out). A song from outside the training set holds such instruments;
# without a source of their own the masks, which sum to 1, must hand them to piano or strings.
# It is separated and scored, but never transcribed (a roll of every remaining instrument at once
# is no one's part) and left out of the instrument averages.
OTHER = "other"


def is_instrument(source: str) -> bool:
    """Whether ``source`` is an instrument class (transcribed, in the averages), i.e. not :data:`OTHER`."""
    return source != OTHER


def class_of(program: int, is_drum: bool, classes: dict[str, SourceClass] = DEFAULT_CLASSES) -> str | None:
    """The class a stem belongs to, or None when no class claims it."""
    for cls in classes.values():
        if is_drum:
            if cls.is_drum:
                return cls.name
        elif not cls.is_drum and program in cls.programs:
            return cls.name
    return None
