"""GuitarSet (Xi et al. 2018): solo acoustic guitar takes with per-string note annotations.

Layout (the published one): ``<root>/audio_mono-mic/<id>_mic.wav`` (44.1 kHz mono) and
``<root>/annotation/<id>.jams``. A JAMS file is JSON (read here without the ``jams`` package):
its ``annotations`` hold six with ``"namespace": "note_midi"``, one per string, whose ``data``
is a list of ``{time, duration, value, confidence}`` observations (jams 0.3, what GuitarSet
ships) or, in older JAMS, a dict of lists ``{time: [...], duration: [...], value: [...]}``;
both are read. ``value`` is a fractional MIDI pitch (the annotations follow the played pitch),
rounded here to the nearest key; every note gets ``velocity`` (JAMS has none). Other
namespaces (pitch_contour, beats, chords, ...) are ignored. ``audio`` picks another of the
published recordings: ``mix`` (``audio_mono-pickup_mix/<id>_mix.wav``), ``hex`` or ``hex_cln``
(six-channel hexaphonic pickup, summed to mono).

Ids are ``<player>_<style><n>-<tempo>-<key>_<comp|solo>``, e.g. ``00_BN1-129-Eb_comp``, with
players 00-05. Splits are by player so that no guitarist is heard in two splits (the
player-wise folds of the GuitarSet transcription literature, e.g. TabCNN): ``test_players``
``["05"]``, ``validation_players`` ``["04"]``, the rest (00-03) train. Each player recorded
every style, tempo and key, so every split covers the full set of excerpts (60 takes each).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mstt.data.base import AdapterOptions, DatasetAdapter, Track
from mstt.data.maps import Unusable, check_sources, recording_length
from mstt.data.targets import sort_notes
from mstt.errors import DataError

AUDIO = {  # option value -> (folder, file suffix after the id)
    "mic": ("audio_mono-mic", "_mic.wav"),
    "mix": ("audio_mono-pickup_mix", "_mix.wav"),
    "hex": ("audio_hex-pickup_original", "_hex.wav"),
    "hex_cln": ("audio_hex-pickup_debleeded", "_hex_cln.wav"),
}
TAKE_ID = re.compile(r"(\d\d)_.+")  # only the player matters here; styles and keys vary


@dataclass
class GuitarSetOptions(AdapterOptions):
    """Options of the ``guitarset`` dataset adapter (splits: module docstring)."""

    audio: str = "mic"  # mic | mix | hex | hex_cln: which published recording is read
    test_players: list[str] = field(default_factory=lambda: ["05"])
    validation_players: list[str] = field(default_factory=lambda: ["04"])
    velocity: int = 100  # JAMS notes have no velocity: every note gets this one


def _observations(data: Any) -> list[dict[str, Any]]:
    """A JAMS ``data`` field as a list of observation dicts (list of dicts or dict of lists)."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        columns = {k: data.get(k) for k in ("time", "duration", "value")}
        if not all(isinstance(c, list) for c in columns.values()) or len({len(c) for c in columns.values()}) != 1:
            raise ValueError("'data' columns time, duration, value are not lists of one length")
        return [dict(zip(columns, row)) for row in zip(*columns.values())]
    raise ValueError(f"'data' is a {type(data).__name__}, not a list or dict")


def read_jams_notes(path: Path, velocity: int) -> np.ndarray:
    """Every ``note_midi`` observation of a JAMS file as float64 ``(n, 4)``, pitches rounded.

    Raises ValueError when the file is not JSON, has no note_midi annotation or a bad observation.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    if not isinstance(annotations, list):
        raise ValueError("no 'annotations' list")
    strings = [a for a in annotations if isinstance(a, dict) and a.get("namespace") == "note_midi"]
    if not strings:
        raise ValueError("no note_midi annotations")
    rows = []
    for index, annotation in enumerate(strings):
        for obs in _observations(annotation.get("data", [])):
            try:
                onset, duration, pitch = (float(obs[k]) for k in ("time", "duration", "value"))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"note_midi annotation {index}: bad observation {str(obs)[:80]}") from None
            if not all(map(math.isfinite, (onset, duration, pitch))) or onset < 0 or duration < 0:
                raise ValueError(f"note_midi annotation {index}: bad time {onset} + {duration}")
            key = int(math.floor(pitch + 0.5))  # halves up, as the rolls round
            if not 0 <= key <= 127:
                raise ValueError(f"note_midi annotation {index}: pitch {pitch} outside MIDI 0-127")
            rows.append((onset, onset + duration, key, velocity))
    return sort_notes(np.array(rows, dtype=np.float64).reshape(-1, 4))


class GuitarSetAdapter(DatasetAdapter):
    """GuitarSet takes (one ``guitar`` source) split by player."""

    layout = "guitarset"
    source = "guitar"

    def __init__(
        self, root: str | Path, sources: list[str], sample_rate: int, options: GuitarSetOptions | None = None
    ) -> None:
        options = options or GuitarSetOptions()
        super().__init__(root, sources, sample_rate, **options.adapter_settings())
        self.options = options
        check_sources(self.root, self.sources, self.source, "GuitarSet")
        if options.audio not in AUDIO:
            raise DataError(f"data.options.audio: '{options.audio}'; use one of {', '.join(AUDIO)}")
        overlap = set(options.test_players) & set(options.validation_players)
        if overlap:
            raise DataError(f"data.options: player(s) {', '.join(sorted(overlap))} in both test_players and validation_players")
        folder, suffix = AUDIO[options.audio]
        self.audio_dir, self.suffix = self.root / folder, suffix
        self.annotation_dir = self.root / "annotation"
        if not self.audio_dir.is_dir() and not self.annotation_dir.is_dir():
            raise DataError(f"{self.root}: not a GuitarSet folder; expected {folder}/<id>{suffix} and annotation/<id>.jams")
        takes = {p.name[: -len(suffix)] for p in _files(self.audio_dir) if p.name.endswith(suffix)}
        takes |= {p.stem for p in _files(self.annotation_dir) if p.suffix == ".jams"}
        for take in sorted(takes):
            wav = self.audio_dir / f"{take}{suffix}"
            try:
                self._add(self._scan(take, wav))
            except Unusable as why:
                self._skip(wav, *why.args, split=self.split_of(take))
            except OSError as exc:  # permissions, a vanished file: one take, not the run
                self._skip(wav, "unreadable take", f"{type(exc).__name__}: {exc}", split=self.split_of(take))
        self._require_tracks()

    def split_of(self, take: str) -> str | None:
        """The split of a take id by its player, or None for an id that is not GuitarSet's."""
        match = TAKE_ID.fullmatch(take)
        if not match:
            return None
        player = match.group(1)
        if player in self.options.test_players:
            return "test"
        if player in self.options.validation_players:
            return "validation"
        return "train"

    def _scan(self, take: str, wav: Path) -> Track:
        """One take -> Track; Unusable with the reason it cannot be used."""
        jams = self.annotation_dir / f"{take}.jams"
        split = self.split_of(take)
        if split is None:
            raise Unusable("not a GuitarSet id", f"{take} (expected e.g. 00_BN1-129-Eb_comp)")
        if not wav.exists():
            raise Unusable("missing audio", f"{jams.name} has no {wav.parent.name}/{wav.name}")
        if not jams.exists():
            raise Unusable("missing annotation", f"{wav.name} has no annotation/{jams.name}")
        notes = self._notes(jams)
        if len(notes) == 0:
            raise Unusable("no notes", f"{jams.name}: every note_midi annotation is empty")
        samples = recording_length(wav, self.sample_rate)
        return Track(take, split, wav, samples, self.sample_rate, {self.source: (wav,)}, {self.source: notes})


    def _notes(self, jams: Path) -> np.ndarray:
        """Notes of one take, parsed once and cached: GuitarSet's JAMS files are mostly pitch
        contours (about a megabyte each), so parsing all 360 takes on every start is slow."""
        cache_path = self.cache.notes_path([jams])
        notes = self.cache.load_notes(cache_path)
        if notes is None:
            try:
                notes = read_jams_notes(jams, self.options.velocity)
            except ValueError as exc:
                raise Unusable("bad annotation", f"{jams.name}: {exc}") from exc
            try:
                self.cache.store_notes(cache_path, notes)
            except OSError:
                pass  # a read-only cache only costs speed
        notes[:, 3] = self.options.velocity  # the cached copy may come from another velocity option
        return notes


def _files(folder: Path) -> list[Path]:
    """Files directly inside ``folder`` (none when it is missing)."""
    return [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
