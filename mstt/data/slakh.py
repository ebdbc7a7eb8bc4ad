"""Slakh2100 (orig, split2, redux) and babyslakh_16k in their published layouts.

Layouts, detected from the folders (``split_layout="auto"``):

- ``orig``: ``train/ validation/ test/`` of ``TrackXXXXX/`` with the original id ranges
  (Track00001-01500 train, 01501-01875 validation, 01876-02100 test).
- ``split2``: all 2100 tracks in the same folders (1500/375/225), some outside their original
  range (slakh-utils' ``splits_v2.json`` moved them so that no MIDI file is in two splits).
- ``redux``: the same folders plus ``omitted/``, which holds the duplicates; omitted tracks
  are never used.
- ``folders``: split folders in any other arrangement (e.g. ``mstt synth`` output): tracks
  are used where the folders put them.
- ``flat``: ``TrackXXXXX/`` folders directly under the root (babyslakh_16k, or one split
  folder given as root). With the root named ``train``, ``validation`` or ``test`` every
  track belongs to that split; otherwise tracks sorted by name are split in order in
  Slakh2100's proportions (1500/375/225: babyslakh_16k gives 14 train, 4 validation, 2 test).

Asking for ``split_layout="orig"`` on a split2 or redux copy reassigns every track, omitted
ones included, to its original split by id: the splits the Cerberus paper used.

The mixture file (``mix.flac``/``mix.wav``) is not read: each example's mixture is the sum of
the recipe's sources, so that a piano+guitar recipe hears only piano and guitar. With the option
``mix_other_stems`` every other rendered stem is added as accompaniment (Track.stems[ACCOMPANIMENT]),
which makes the mixture the published one and teaches a model to leave other instruments out.
With ``other`` among the recipe's sources every rendered stem no other source owns is that
source's audio instead (no notes): the mixture is the published one, and the model learns where
the rest of a song goes rather than to hide it in the instruments (see mstt.data.classes.OTHER).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mstt.data.audio import AudioError, probe, resampled_length
from mstt.data.base import ACCOMPANIMENT, SPLITS, AdapterOptions, DatasetAdapter, Track
from mstt.data.classes import DEFAULT_CLASSES, OTHER, SourceClass, catch_all_source, class_of, is_instrument, source_class
from mstt.data.targets import sort_notes
from mstt.errors import DataError

LAYOUTS = ("auto", "orig", "split2", "redux", "folders", "flat")
ORIGINAL_SPLIT_ENDS = (("train", 1500), ("validation", 1875), ("test", 2100))
SLAKH_SPLIT_SIZES = Counter({"train": 1500, "validation": 375, "test": 225})
SPLIT_SHARES = {"train": 1500 / 2100, "validation": 375 / 2100, "test": 225 / 2100}
STEM_FIELDS = ("program_num", "is_drum", "audio_rendered", "midi_saved")
AUDIO_SUFFIXES = (".flac", ".wav")


@dataclass
class SlakhOptions(AdapterOptions):
    """Options of the ``slakh`` dataset adapter."""

    split_layout: str = "auto"  # auto | orig | split2 | redux | folders | flat (module doc)
    require_all_sources: bool = True  # a track lacking a source is skipped; False: it is silent
    class_programs: dict[str, list[int]] = field(default_factory=dict)  # class -> GM programs
    length_tolerance_seconds: float = 1.0  # stems shorter than the longest by more: skip track
    # False (the paper): a mixture is the sum of the recipe's sources. True: every other rendered
    # stem (other classes, organ, brass, synths) sounds in it too, as in mix.flac, and no source owns it.
    mix_other_stems: bool = False
    verify_audio: bool = True  # decode each stem's last block at build time (finds truncation)


def source_classes(overrides: dict[str, list[int]]) -> dict[str, SourceClass]:
    """The default classes with program ranges replaced or added by ``overrides``."""
    classes = dict(DEFAULT_CLASSES)
    for name, programs in overrides.items():
        programs = tuple(int(p) for p in programs)
        if name in classes:
            classes[name] = replace(classes[name], programs=programs)
        else:
            classes[name] = SourceClass(name, programs, default_program=programs[0] if programs else 0)
    return classes


def original_split(name: str) -> str | None:
    """The Slakh2100-orig split of a track folder name, or None for a non-Slakh id."""
    match = re.fullmatch(r"Track(\d+)", name)
    if not match:
        return None
    number = int(match.group(1))
    for split, end in ORIGINAL_SPLIT_ENDS:
        if 1 <= number <= end:
            return split
    return None


def _track_dirs(folder: Path) -> list[Path]:
    """Track folders directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and (p.name.startswith("Track") or (p / "metadata.yaml").exists())]
    return sorted(found, key=lambda p: p.name)


def _flat_splits(dirs: list[Path], root: Path) -> list[tuple[str, Path]]:
    """Splits of a flat folder: the root's own split name, else Slakh's shares in name order."""
    if root.name in SPLITS:
        return [(root.name, d) for d in dirs]
    n = len(dirs)
    n_test = round(n * SPLIT_SHARES["test"])
    n_val = round(n * SPLIT_SHARES["validation"])
    if n >= 3:  # a few tracks still give every split one
        n_test, n_val = max(1, n_test), max(1, n_val)
    n_train = n - n_val - n_test
    names = ["train"] * n_train + ["validation"] * n_val + ["test"] * n_test
    return list(zip(names, dirs))


def find_tracks(root: Path, split_layout: str = "auto") -> tuple[str, list[tuple[str, Path]]]:
    """(layout, [(split, track folder)]) of a Slakh root; DataError when it holds none."""
    if split_layout not in LAYOUTS:
        raise DataError(f"{root}: split_layout '{split_layout}' is unknown; use one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; give the Slakh2100 or babyslakh_16k root")
    by_dir = [(split, d) for split in SPLITS for d in _track_dirs(root / split)]
    omitted = _track_dirs(root / "omitted")
    flat = _track_dirs(root)
    if split_layout == "auto":
        if by_dir:
            if (root / "omitted").is_dir():
                split_layout = "redux"
            elif all(original_split(d.name) == split for split, d in by_dir):
                split_layout = "orig"  # also a partial copy of it
            elif Counter(split for split, _ in by_dir) == SLAKH_SPLIT_SIZES:
                split_layout = "split2"
            else:
                split_layout = "folders"
        else:
            split_layout = "flat"
    if split_layout == "flat":
        pairs = _flat_splits(flat, root)
    elif split_layout == "orig" and (by_dir or omitted):
        pairs = [(original_split(d.name) or "", d) for _, d in by_dir] + [
            (original_split(d.name) or "", d) for d in omitted
        ]
    elif split_layout == "orig":
        pairs = [(original_split(d.name) or "", d) for d in flat]
    else:
        pairs = by_dir
    if not pairs:
        raise DataError(
            f"{root}: no Slakh tracks for layout '{split_layout}'; expected train/ validation/ test/ "
            f"of TrackXXXXX/ folders (Slakh2100, split2, redux) or TrackXXXXX/ folders (babyslakh_16k)"
        )
    return split_layout, pairs


def read_notes(path: Path) -> np.ndarray:
    """Every note of a MIDI file as float64 ``(n, 4)`` [onset_s, offset_s, pitch, velocity]."""
    import pretty_midi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pretty_midi warns about harmless meta events
        midi = pretty_midi.PrettyMIDI(str(path))
    rows = [(n.start, n.end, n.pitch, n.velocity) for inst in midi.instruments for n in inst.notes]
    return sort_notes(np.array(rows, dtype=np.float64).reshape(-1, 4))


def _unused(cls: str | None, program: int) -> str:
    """Why a rendered stem is in no source: of no class, or of a class the recipe does not separate."""
    if cls is None:
        return f"program {program} is of no class and no source '{OTHER}' takes it (mix_other_stems: false)"
    return f"class {cls} is not among the sources (mix_other_stems: false)"


class _Skip(Exception):
    """A track is unusable: (kind, detail)."""


class SlakhAdapter(DatasetAdapter):
    """Slakh2100 (orig, split2, redux) and babyslakh_16k: stems summed per source class."""

    def __init__(
        self, root: str | Path, sources: list[str], sample_rate: int, options: SlakhOptions | None = None
    ) -> None:
        options = options or SlakhOptions()
        super().__init__(root, sources, sample_rate, **options.adapter_settings())
        self.options = options
        if OTHER in options.class_programs:
            raise DataError(
                f"{self.root}: data.options.class_programs.{OTHER}: '{OTHER}' is the source of every stem no "
                f"other source owns and takes no programs; give your class another name"
            )
        self.classes = source_classes(dict(options.class_programs))
        self.catch_all = catch_all_source(self.sources)
        unknown = [s for s in self.sources if source_class(s, self.classes) is None]
        if unknown or not any(is_instrument(s, self.classes) for s in self.sources):
            raise DataError(
                f"{self.root}: unknown source(s) {', '.join(unknown) or '(no instrument given)'}; sources are "
                f"{', '.join(self.classes)} and {OTHER} (recipes can add classes with the option class_programs)"
            )
        self.layout, pairs = find_tracks(self.root, options.split_layout)
        self._scan_left_out: list[tuple[str, str]] = []
        for split, path in pairs:
            if split not in SPLITS:
                self._skip(path, "not a Slakh2100 track id", "split_layout=orig needs Track00001-Track02100")
                continue
            self._scan_left_out: list[tuple[str, str]] = []  # (stem, reason) of the track being scanned
            try:
                self._add(self._scan(split, path))
            except _Skip as skip:
                self._skip(path, *skip.args, split=split)
                continue
            except OSError as exc:  # permissions, a vanished file: one track, not the run
                self._skip(path, "unreadable track", f"{type(exc).__name__}: {exc}", split=split)
                continue
            for stem, reason in self._scan_left_out:  # only for tracks in use: a skipped one says why already
                self._leave_out(path, stem, reason)
        self._require_tracks()

    def _metadata(self, path: Path) -> dict[str, Any]:
        """Parsed metadata.yaml with every stem's needed fields; _Skip when unusable."""
        meta_path = path / "metadata.yaml"
        if not meta_path.exists():
            raise _Skip("missing metadata.yaml")
        try:
            meta = yaml.safe_load(meta_path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise _Skip("bad metadata.yaml", f"not YAML ({str(exc).splitlines()[0]})") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("stems"), dict) or not meta["stems"]:
            raise _Skip("bad metadata.yaml", "no 'stems' mapping")
        for stem_id, stem in meta["stems"].items():
            missing = [f for f in STEM_FIELDS if not isinstance(stem, dict) or f not in stem]
            if missing:
                raise _Skip("bad metadata.yaml", f"stem {stem_id} lacks {', '.join(missing)}")
        return meta

    def _scan(self, split: str, path: Path) -> Track:
        """One track folder -> Track; raises _Skip with the reason it is unusable."""
        meta = self._metadata(path)
        audio_dir = path / str(meta.get("audio_dir") or "stems")
        midi_dir = path / str(meta.get("midi_dir") or "MIDI")
        stems: dict[str, list[tuple[Path, Path | None]]] = {s: [] for s in self.sources}
        others: list[Path] = []
        for stem_id, stem in sorted(meta["stems"].items(), key=lambda item: str(item[0])):  # YAML ids: S00, 1, null
            if not (stem["audio_rendered"] and stem["midi_saved"]):
                # Its audio is not in our mixtures either, so dropping it is consistent; but say so.
                flag = "audio_rendered" if not stem["audio_rendered"] else "midi_saved"
                self._scan_left_out.append((str(stem_id), f"{flag}: false in metadata.yaml"))
                continue
            try:
                program = int(stem["program_num"])
            except (TypeError, ValueError) as exc:
                raise _Skip("bad metadata.yaml", f"stem {stem_id} program_num {stem['program_num']!r}") from exc
            cls = class_of(program, bool(stem["is_drum"]), self.classes)
            if cls not in stems and self.catch_all is not None:
                cls = self.catch_all  # the catch-all source owns it
            if cls not in stems and not self.options.mix_other_stems:
                self._scan_left_out.append((str(stem_id), _unused(cls, program)))
                continue
            audio = next((audio_dir / f"{stem_id}{s}" for s in AUDIO_SUFFIXES if (audio_dir / f"{stem_id}{s}").exists()), None)
            if audio is None:
                raise _Skip("missing stem audio", f"{audio_dir.name}/{stem_id}.flac or .wav")
            if cls not in stems:
                others.append(audio)  # no notes needed: nothing is transcribed from it
                continue
            if not is_instrument(cls, self.classes):  # not transcribed: audio only
                stems[cls].append((audio, None))
                continue
            midi = midi_dir / f"{stem_id}.mid"
            if not midi.exists():
                raise _Skip("missing stem MIDI", f"{midi_dir.name}/{stem_id}.mid")
            stems[cls].append((audio, midi))
        notes = {s: self._notes([m for _, m in pairs if m is not None]) for s, pairs in stems.items()}
        instruments = [s for s in self.sources if is_instrument(s, self.classes)]
        for source in instruments:  # a song without unclassed stems is still whole
            if stems[source] and len(notes[source]) == 0:
                if self.options.require_all_sources:
                    raise _Skip(f"no notes for source '{source}'", ", ".join(m.name for _, m in stems[source]))
                stems[source] = []  # audio without notes would teach wrong targets: leave it out
            if not stems[source] and self.options.require_all_sources:
                raise _Skip(f"lacks source '{source}'")
        if not any(stems[s] for s in instruments):
            raise _Skip("holds none of the sources", ", ".join(self.sources))
        files = {s: tuple(a for a, _ in pairs) for s, pairs in stems.items()}
        if others:
            files[ACCOMPANIMENT] = tuple(others)
        samples = self._length(path, files)
        return Track(path.name, split, path, samples, self.sample_rate, files, notes)

    def _notes(self, midi_files: list[Path]) -> np.ndarray:
        """Notes of one source (its stems' MIDI files merged), parsed once and cached."""
        if not midi_files:
            return np.zeros((0, 4))
        cache_path = self.cache.notes_path(midi_files)
        cached = self.cache.load_notes(cache_path)
        if cached is not None:
            return cached
        parts = []
        for midi in midi_files:
            try:
                parts.append(read_notes(midi))
            except Exception as exc:  # mido/pretty_midi raise many types on broken files
                raise _Skip("unparseable MIDI", f"{midi.parent.name}/{midi.name}: {type(exc).__name__}: {exc}") from exc
        notes = sort_notes(np.concatenate(parts))
        try:
            self.cache.store_notes(cache_path, notes)
        except OSError:
            pass  # a read-only cache only costs speed
        return notes

    def _length(self, path: Path, files: dict[str, tuple[Path, ...]]) -> int:
        """Track length at the adapter's rate from the stem headers; _Skip on bad audio."""
        lengths: dict[Path, int] = {}
        for audio in (a for group in files.values() for a in group):
            try:
                frames, sr = probe(audio, verify_tail=False)
            except AudioError as exc:
                raise _Skip("unreadable audio", str(exc)) from exc
            lengths[audio] = resampled_length(frames, sr, self.sample_rate)
        samples = max(lengths.values())
        shortest = min(lengths, key=lengths.get)
        if (samples - lengths[shortest]) / self.sample_rate > self.options.length_tolerance_seconds:
            raise _Skip(
                "stems of different lengths",
                f"{shortest.name} is {(samples - lengths[shortest]) / self.sample_rate:.2f} s shorter",
            )
        if self.options.verify_audio:
            for source, group in files.items():
                if not group:
                    continue
                entry = self.cache.entry(path, source, group, self.sample_rate)
                if self.cache.load(entry, samples) is not None:
                    continue  # decoded before: the files were complete
                for audio in group:
                    try:
                        probe(audio, verify_tail=True)
                    except AudioError as exc:
                        raise _Skip("unreadable audio", str(exc)) from exc
        return samples
