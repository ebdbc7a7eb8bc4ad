"""MAPS (Emiya, Badeau, David 2010): real and synthesized piano recordings with aligned notes.

Layout (the published one): ``<root>/<piano>/{ISOL,RAND,UCHO,MUS}/``; a music piece is
``MUS/MAPS_MUS-<piece>_<piano>.wav`` (44.1 kHz stereo, read as the mean of its channels) with
``MAPS_MUS-<piece>_<piano>.txt`` (one header line ``OnsetTime OffsetTime MidiPitch``, then one
tab-separated note a line) and a ``.mid``. Notes come from the ``.txt``; it has no velocities,
so every note gets ``velocity`` (100 by default, above the roll targets' velocity-30 filter).
Only MUS pieces are used unless ``subsets`` adds ISOL, RAND or UCHO (searched recursively).
The root may also be one piano's folder.

Splits (``test_pianos``, ``validation_pianos``): the convention of Sigtia et al. 2016
("configuration 2") and Onsets and Frames (Hawthorne et al. 2018): test on the 60 pieces
recorded on the real Yamaha Disklavier (``ENSTDkCl`` close, ``ENSTDkAm`` ambient microphones),
train on the seven synthesized pianos. Validation holds out one synthesized piano,
``SptkBGAm`` by default: an unseen instrument, recorded with ambient microphones, is the closest
stand-in for the unseen real pianos of the test split, while its close-miked twin ``SptkBGCl``
stays in training so no timbre is lost. With ``exclude_test_pieces`` (as Onsets and Frames does)
a training or validation piece whose composition is also a test piece is left out, with the
reason in ``skipped``; pieces shared by training and validation pianos are kept.

This module also holds what the GuitarSet adapter shares: :class:`Unusable`,
:func:`recording_length`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mstt.data.audio import AudioError, probe, resampled_length, wav_truncation
from mstt.data.base import AdapterOptions, DatasetAdapter, Track
from mstt.data.targets import sort_notes
from mstt.errors import DataError

SUBSETS = ("ISOL", "RAND", "UCHO", "MUS")
SYNTHETIC_PIANOS = ("AkPnBcht", "AkPnBsdf", "AkPnCGdD", "AkPnStgb", "SptkBGAm", "SptkBGCl", "StbgTGd2")
REAL_PIANOS = ("ENSTDkAm", "ENSTDkCl")
HEADER = ("onsettime", "offsettime", "midipitch")


@dataclass
class MapsOptions(AdapterOptions):
    """Options of the ``maps`` dataset adapter (splits: module docstring)."""

    subsets: list[str] = field(default_factory=lambda: ["MUS"])  # add ISOL, RAND, UCHO for notes and chords
    test_pianos: list[str] = field(default_factory=lambda: list(REAL_PIANOS))
    validation_pianos: list[str] = field(default_factory=lambda: ["SptkBGAm"])
    exclude_test_pieces: bool = True  # leave out non-test copies of the test split's pieces
    velocity: int = 100  # the .txt has no velocities: every note gets this one


class Unusable(Exception):
    """A recording cannot be used: ``(kind, detail)``, recorded by ``DatasetAdapter._skip``."""


def recording_length(path: Path, sample_rate: int) -> int:
    """Samples of ``path`` at ``sample_rate`` from its header; Unusable when missing or damaged."""
    try:
        frames, sr = probe(path, verify_tail=False)  # the tail is checked below, for wav by size
        reason = wav_truncation(path) if path.suffix.lower() == ".wav" else None
    except AudioError as exc:
        raise Unusable("unreadable audio", str(exc)) from exc
    except OSError as exc:
        raise Unusable("unreadable audio", f"{type(exc).__name__}: {exc}") from exc
    if reason:
        raise Unusable("unreadable audio", f"{path.parent.name}/{path.name} is {reason}")
    return resampled_length(frames, sr, sample_rate)


def check_sources(root: Path, sources: list[str], source: str, dataset: str) -> None:
    """DataError unless ``source`` is among the recipe's sources (the others stay silent)."""
    if source not in sources:
        raise DataError(
            f"{root}: {dataset} holds only '{source}', which data.sources ({', '.join(sources) or 'none'}) "
            f"lacks; add {source} to data.sources"
        )


def read_maps_notes(path: Path, velocity: int) -> np.ndarray:
    """Notes of a MAPS ``.txt`` as float64 ``(n, 4)`` [onset_s, offset_s, pitch, velocity].

    Raises ValueError naming the first bad line.
    """
    rows = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or (number == 1 and tuple(f.lower() for f in fields) == HEADER):
            continue
        if len(fields) != 3:
            raise ValueError(f"line {number}: {len(fields)} fields, expected OnsetTime OffsetTime MidiPitch")
        try:
            onset, offset, pitch = (float(x) for x in fields)
        except ValueError:
            raise ValueError(f"line {number}: not numbers: {line.strip()[:60]!r}") from None
        if not (math.isfinite(onset) and math.isfinite(offset)) or onset < 0 or offset < onset:
            raise ValueError(f"line {number}: bad times {onset} -> {offset}")
        if pitch != int(pitch) or not 0 <= pitch <= 127:
            raise ValueError(f"line {number}: MIDI pitch {fields[2]} is not an integer in 0-127")
        rows.append((onset, offset, pitch, velocity))
    return sort_notes(np.array(rows, dtype=np.float64).reshape(-1, 4))


def piece_of(stem: str) -> str | None:
    """The composition of ``MAPS_MUS-<piece>_<piano>`` (pieces may hold underscores), else None."""
    if not stem.startswith("MAPS_MUS-") or "_" not in stem[9:]:
        return None
    return stem[9:].rsplit("_", 1)[0]


def piano_folders(root: Path) -> list[Path]:
    """The piano folders of a MAPS root (or the root itself when it is one), sorted by name."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give the MAPS root (holding <piano>/MUS/)")
    if any((root / s).is_dir() for s in SUBSETS):
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and any((p / s).is_dir() for s in SUBSETS))
    if not found:
        raise DataError(f"{root}: no MAPS piano folders; expected <piano>/MUS/MAPS_MUS-<piece>_<piano>.wav")
    return found


class MapsAdapter(DatasetAdapter):
    """MAPS pieces (one ``piano`` source) split by piano: synthesized for training, real for test."""

    layout = "maps"
    source = "piano"

    def __init__(self, root: str | Path, sources: list[str], sample_rate: int, options: MapsOptions | None = None) -> None:
        options = options or MapsOptions()
        super().__init__(root, sources, sample_rate, **options.adapter_settings())
        self.options = options
        check_sources(self.root, self.sources, self.source, "MAPS")
        unknown = [s for s in options.subsets if s not in SUBSETS]
        if unknown or not options.subsets:
            raise DataError(f"data.options.subsets: {unknown or 'none given'}; MAPS subsets are {', '.join(SUBSETS)}")
        overlap = set(options.test_pianos) & set(options.validation_pianos)
        if overlap:
            raise DataError(f"data.options: piano(s) {', '.join(sorted(overlap))} in both test_pianos and validation_pianos")
        candidates = []  # (split, stem path without suffix)
        for piano in piano_folders(self.root):
            split = self._split_of(piano.name)
            for subset in options.subsets:
                # Names such as MAPS_ISOL_CH0.1_F_<piano> hold dots: strip only the known suffix.
                stems = {p.with_name(p.stem) for p in (piano / subset).rglob("*") if p.suffix.lower() in (".wav", ".txt")}
                candidates += [(split, s) for s in sorted(stems)]
        test_pieces = {piece_of(s.name) for split, s in candidates if split == "test"} - {None}
        for split, stem in candidates:
            piece = piece_of(stem.name)
            if options.exclude_test_pieces and split != "test" and piece in test_pieces:
                # Left out by design, not broken: no split of an evaluation lacks it.
                self._skip(_with(stem, ".wav"), "piece also in the test split", f"{piece} (exclude_test_pieces)")
                continue
            try:
                self._add(self._scan(split, stem))
            except Unusable as why:
                self._skip(_with(stem, ".wav"), *why.args, split=split)
            except OSError as exc:  # permissions, a vanished file: one piece, not the run
                self._skip(_with(stem, ".wav"), "unreadable piece", f"{type(exc).__name__}: {exc}", split=split)
        self._require_tracks()

    def _split_of(self, piano: str) -> str:
        """The split of every recording of ``piano``."""
        if piano in self.options.test_pianos:
            return "test"
        if piano in self.options.validation_pianos:
            return "validation"
        return "train"

    def _scan(self, split: str, stem: Path) -> Track:
        """One piece (``stem`` + .wav/.txt) -> Track; Unusable with the reason it cannot be used."""
        wav, txt = _with(stem, ".wav"), _with(stem, ".txt")
        if not wav.exists():
            raise Unusable("missing audio", f"{txt.name} has no {wav.name}")
        if not txt.exists():
            raise Unusable("missing notes", f"{wav.name} has no {txt.name}")
        try:
            notes = read_maps_notes(txt, self.options.velocity)
        except ValueError as exc:
            raise Unusable("bad notes file", f"{txt.name} {exc}") from exc
        if len(notes) == 0:
            raise Unusable("no notes", txt.name)
        samples = recording_length(wav, self.sample_rate)
        return Track(stem.name, split, wav, samples, self.sample_rate, {self.source: (wav,)}, {self.source: notes})


def _with(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix`` (``with_suffix`` would cut a name like ``..._CH0.1_F_<piano>`` at its dot)."""
    return stem.with_name(stem.name + suffix)
