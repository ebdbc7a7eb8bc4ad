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


# PAPER.md: piano 0-7, guitar 24-31, bass 32-39, drums = is_drum, strings 40-51.
DEFAULT_CLASSES: dict[str, SourceClass] = {
    "piano": SourceClass("piano", tuple(range(0, 8)), default_program=0),
    "guitar": SourceClass("guitar", tuple(range(24, 32)), default_program=25),
    "bass": SourceClass("bass", tuple(range(32, 40)), default_program=33),
    "drums": SourceClass("drums", (), is_drum=True, default_program=0),
    "strings": SourceClass("strings", tuple(range(40, 52)), default_program=48),
}


def class_of(program: int, is_drum: bool, classes: dict[str, SourceClass] = DEFAULT_CLASSES) -> str | None:
    """The class a stem belongs to, or None when no class claims it."""
    for cls in classes.values():
        if is_drum:
            if cls.is_drum:
                return cls.name
        elif not cls.is_drum and program in cls.programs:
            return cls.name
    return None
