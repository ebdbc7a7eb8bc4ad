"""Source classes: which General-MIDI programs (or drums) belong to each, and what each can do.

Code asks a source's class what it can do (:func:`is_instrument`: transcribed and in the means;
``is_drum``: no offsets; ``catch_all``: owns the stems no other source owns) rather than testing
its name. The name :data:`OTHER` matters only where a name is read or written (recipes, class
options, the synthetic set's metadata).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceClass:
    """A source class as the paper groups Slakh stems: GM program range or the drum kit."""

    name: str
    programs: tuple[int, ...]  # GM programs 0-127 that belong to the class
    is_drum: bool = False
    default_program: int = 0  # program of the class's track in MIDI files mstt writes
    transcribed: bool = True  # has notes: a roll target, transcription scores, a share of the means, a MIDI track
    catch_all: bool = False  # owns every stem that no other source of the recipe owns


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
CATCH_ALL = SourceClass(OTHER, (), transcribed=False, catch_all=True)


def source_class(source: str, classes: dict[str, SourceClass] = DEFAULT_CLASSES) -> SourceClass | None:
    """The class of the source named ``source``: one of ``classes``, the catch-all, or None (no class)."""
    return CATCH_ALL if source == CATCH_ALL.name else classes.get(source)


def is_instrument(source: str, classes: dict[str, SourceClass] = DEFAULT_CLASSES) -> bool:
    """Whether ``source`` is transcribed and counts in the averages (a source of no known class is)."""
    cls = source_class(source, classes)
    return cls is None or cls.transcribed


def catch_all_source(sources: list[str]) -> str | None:
    """The source among ``sources`` that owns the stems no other source owns, if one does."""
    return next((s for s in sources if getattr(source_class(s), "catch_all", False)), None)


def class_of(program: int, is_drum: bool, classes: dict[str, SourceClass] = DEFAULT_CLASSES) -> str | None:
    """The class a stem belongs to, or None when no class claims it."""
    for cls in classes.values():
        if is_drum:
            if cls.is_drum:
                return cls.name
        elif not cls.is_drum and program in cls.programs:
            return cls.name
    return None
