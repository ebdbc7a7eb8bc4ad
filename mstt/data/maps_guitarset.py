"""MAPS piano + GuitarSet guitar mixed at random: the paper's real-recordings experiment (docs/paper.md).

Layout: ``<root>/MAPS/`` (the MAPS root: ``<piano>/MUS/...``) and ``<root>/GuitarSet/``
(``audio_mono-mic/``, ``annotation/``), or any two folders given as ``maps_root`` and
``guitarset_root``. Each corpus is read by its own adapter (:mod:`mstt.data.maps`,
:mod:`mstt.data.guitarset`) with its own splits (``maps``, ``guitarset`` options: real
Disklavier pianos and guitarist 05 for test by default), and a split of this dataset pairs a
split's piano pieces with the same split's guitar takes, so no recording crosses splits.

What is mixed:

- A pair is a :class:`PairTrack`, a virtual track whose two stems point into two recordings:
  for each source, (recording, offset in samples, gain in dB). Its audio is read from each
  corpus adapter's decoded cache (shared with the ``maps`` and ``guitarset`` adapters), so
  decoding, cropping, rolls and evaluation windows are the base class's; only
  :meth:`MapsGuitarSetAdapter.source_audio` (an excerpt with its gain) and the training set
  (fresh pairs per crop) are overridden.
- Levels: each recording is first scaled to peak ``peak`` (the corpora are recorded at very
  different levels; None keeps them), then each source gets its own gain, uniform in
  ``[-gain_db, +gain_db]`` dB. The mixture is the sum of the gained sources.
- Listed pairs (``tracks(split)``): drawn from ``np.random.default_rng([seed, split index])``,
  walking through shuffled copies of both recording lists so that every recording is used
  about equally often; a pair is as long as the shorter recording, at most ``pair_seconds``,
  from a random offset in each; no combination is listed twice. Validation and test hold
  ``eval_pairs`` pairs each (evaluated whole or in windows of ``data.eval_segment_seconds``);
  train lists ``train_pairs`` (0: as many as the larger of its two recording lists), which set
  the epoch length and the summary. A split lists at most every piano x guitar combination.
- Training crops: item ``i`` of epoch ``e`` draws, from ``default_rng([trainer seed, e, i])``,
  any training piano piece and any training guitar take (each in proportion to its length),
  a random offset in each and the two gains: every combination can occur, not only the listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from mstt.data.audio import AudioError, CachedAudio
from mstt.data.base import SILENT_CROP_RETRIES, SPLITS, AdapterOptions, DatasetAdapter, Track, TrainingDataset
from mstt.data.guitarset import GuitarSetAdapter, GuitarSetOptions
from mstt.data.maps import MapsAdapter, MapsOptions, check_sources
from mstt.data.targets import empty_notes
from mstt.errors import DataError

PIANO, GUITAR = "piano", "guitar"


@dataclass
class MapsGuitarSetOptions(AdapterOptions):
    """Options of the ``maps_guitarset`` dataset adapter (module docstring)."""

    maps_root: Optional[str] = None  # None: <root>/MAPS
    guitarset_root: Optional[str] = None  # None: <root>/GuitarSet
    maps: MapsOptions = field(default_factory=MapsOptions)  # its splits; cache_dir and min_velocity are ours
    guitarset: GuitarSetOptions = field(default_factory=GuitarSetOptions)  # likewise
    seed: int = 0  # the listed pairs of every split
    gain_db: float = 6.0  # each source's gain is uniform in [-gain_db, +gain_db] dB
    peak: Optional[float] = 0.5  # each recording is scaled to this peak before its gain; None: as recorded
    pair_seconds: float = 30.0  # longest listed pair
    train_pairs: int = 0  # listed training pairs; 0: the larger of the two training recording counts
    eval_pairs: int = 40  # listed validation pairs, and as many test pairs


@dataclass(eq=False)
class PairTrack(Track):
    """A virtual track: for each source, (recording, offset in samples, gain in dB)."""

    parts: dict[str, tuple[Track, int, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Excerpt:
    """A gained window of a cached recording, read like :class:`CachedAudio`."""

    audio: CachedAudio
    offset: int  # first sample of the window in the recording
    samples: int  # window length
    gain: float  # linear factor applied to every sample

    def read(self, start: int, count: int) -> np.ndarray:
        """float32 samples ``[start, start + count)`` of the window, shorter past its (or the recording's) end."""
        count = max(0, min(count, self.samples - start))
        return self.audio.read(self.offset + start, count) * np.float32(self.gain)


def pair_up(pianos: list[Track], guitars: list[Track], count: int, rng: np.random.Generator) -> list[tuple[Track, Track]]:
    """``count`` distinct (piano, guitar) pairs (at most every combination) walking through
    reshuffled copies of each list, so that every recording is used about equally often."""

    def cycle(items: list[Track]) -> Iterator[Track]:
        while True:
            yield from (items[i] for i in rng.permutation(len(items)))

    a, b = cycle(pianos), cycle(guitars)
    pairs: list[tuple[Track, Track]] = []
    used: set[tuple[int, int]] = set()
    while len(pairs) < min(count, len(pianos) * len(guitars)):
        piano = next(a)
        free = [g for g in guitars if (id(piano), id(g)) not in used]
        if not free:
            continue  # this piano has met every guitar: the next piano takes the turn
        guitar = next(b)
        if (id(piano), id(guitar)) in used:
            guitar = free[int(rng.integers(len(free)))]
        used.add((id(piano), id(guitar)))
        pairs.append((piano, guitar))
    return pairs


def shifted_notes(notes: np.ndarray, start: float, duration: float) -> np.ndarray:
    """Notes sounding in ``[start, start + duration)``, shifted by ``-start`` but not clipped.

    A note begun before the window keeps its negative onset, so rolls mark it sounding but
    not starting (the evaluation windows clip it, as they do for every adapter).
    """
    if len(notes) == 0:
        return empty_notes()
    on, off = notes[:, 0], notes[:, 1]
    keep = (on < start + duration) & ((off > start) | (on >= start))
    out = notes[keep].copy()
    out[:, :2] -= start
    return out


class MapsGuitarSetAdapter(DatasetAdapter):
    """Random piano (MAPS) + guitar (GuitarSet) pairs at random gains, split by each corpus's splits."""

    layout = "maps+guitarset"

    def __init__(
        self, root: str | Path | None, sources: list[str], sample_rate: int, options: MapsGuitarSetOptions | None = None
    ) -> None:
        options = options or MapsGuitarSetOptions()
        if root is None and not (options.maps_root and options.guitarset_root):
            raise DataError("maps_guitarset: set data.root (holding MAPS/ and GuitarSet/) or both maps_root and guitarset_root")
        super().__init__(
            root if root is not None else Path(str(options.maps_root)).expanduser().parent, sources, sample_rate,
            **options.adapter_settings(),
        )
        self.options = options
        for source in (PIANO, GUITAR):
            check_sources(self.root, self.sources, source, "maps_guitarset")
        if options.gain_db < 0 or options.pair_seconds <= 0 or options.train_pairs < 0 or options.eval_pairs < 1:
            raise DataError("data.options: need gain_db >= 0, pair_seconds > 0, train_pairs >= 0, eval_pairs >= 1")
        shared = dict(cache_dir=options.cache_dir, min_velocity=options.min_velocity)
        maps_root = Path(options.maps_root).expanduser() if options.maps_root else self.root / "MAPS"
        guitar_root = Path(options.guitarset_root).expanduser() if options.guitarset_root else self.root / "GuitarSet"
        self.maps = MapsAdapter(maps_root, [PIANO], sample_rate, replace(options.maps, **shared))
        self.guitarset = GuitarSetAdapter(guitar_root, [GUITAR], sample_rate, replace(options.guitarset, **shared))
        for corpus in (self.maps, self.guitarset):
            for skipped, split in zip(corpus.skipped, corpus._skip_splits):
                kind, _, detail = skipped["reason"].partition(": ")
                self._skip(Path(skipped["path"]), kind, detail, split=split)
        for index, split in enumerate(SPLITS):
            pianos, guitars = self.maps.tracks(split), self.guitarset.tracks(split)
            if not pianos or not guitars:
                continue  # _nonempty names the empty split when it is asked for
            count = options.eval_pairs if split != "train" else options.train_pairs or max(len(pianos), len(guitars))
            rng = np.random.default_rng([options.seed, index])
            length = round(options.pair_seconds * self.sample_rate)
            for i, (piano, guitar) in enumerate(pair_up(pianos, guitars, count, rng)):
                self._add(self.pair(split, f"pair{i:04d}", piano, guitar, min(piano.samples, guitar.samples, length), rng))
        self._require_tracks()

    def pair(self, split: str, name: str, piano: Track, guitar: Track, samples: int, rng: np.random.Generator) -> PairTrack:
        """A pair of ``samples`` from random offsets in ``piano`` and ``guitar``, with random gains."""
        parts, notes, stems = {}, {}, {}
        for source, recording in ((PIANO, piano), (GUITAR, guitar)):
            offset = int(rng.integers(0, max(0, recording.samples - samples) + 1))
            gain_db = float(rng.uniform(-self.options.gain_db, self.options.gain_db))
            parts[source] = (recording, offset, gain_db)
            stems[source] = recording.stems[source]
            notes[source] = shifted_notes(recording.notes[source], offset / self.sample_rate, samples / self.sample_rate)
        full = f"{name}-{piano.name}+{guitar.name}"
        return PairTrack(full, split, self.root / "pairs" / split / full, samples, self.sample_rate, stems, notes, parts)

    def _corpus(self, source: str) -> DatasetAdapter:
        return self.maps if source == PIANO else self.guitarset

    def linear_gain(self, track: PairTrack, source: str) -> float:
        """The factor applied to ``source``'s recording in ``track``: peak scaling times the dB gain."""
        recording, _, gain_db = track.parts[source]
        audio = self._corpus(source).source_audio(recording, source)
        gain = 10.0 ** (gain_db / 20.0)
        if self.options.peak is not None and audio is not None:
            gain *= self.options.peak / (audio.scale * 32767.0)  # the cache's scale is peak / 32767
        return gain

    def source_audio(self, track: Track, source: str) -> Excerpt | None:
        """The gained excerpt of ``source`` in a pair; None for a source the pair lacks.

        Raises AudioError when the recording fails to decode (it and its pairs are dropped first).
        """
        part = track.parts.get(source) if isinstance(track, PairTrack) else None
        if part is None:
            return None
        recording, offset, _ = part
        corpus = self._corpus(source)
        try:
            audio = corpus.source_audio(recording, source)
        except AudioError as exc:
            self._lose(corpus, recording, exc)
            raise
        return None if audio is None else Excerpt(audio, offset, track.samples, self.linear_gain(track, source))

    def _lose(self, corpus: DatasetAdapter, recording: Track, exc: Exception) -> None:
        """A recording failed to decode: skip it once, and drop every listed pair that uses it."""
        if recording not in corpus.tracks(recording.split):
            return
        corpus._drop(recording, exc)
        self._skip(recording.path, "undecodable audio", str(exc), split=recording.split)
        for split, tracks in self._tracks.items():
            self._tracks[split] = [t for t in tracks if all(p[0] is not recording for p in t.parts.values())]

    def training_dataset(self, split: str, crop_seconds: float, hop_length: int, seed: int) -> "PairTrainingDataset":
        """Fresh random pairs of ``crop_seconds`` from the recordings of ``split``; see the module docstring."""
        return PairTrainingDataset(self, split, crop_seconds, hop_length, seed)


class PairTrainingDataset(TrainingDataset):
    """Crops of fresh pairs; item ``i`` depends on (seed, epoch, i) only. Epoch length: the listed pairs'."""

    def __init__(self, adapter: MapsGuitarSetAdapter, split: str, crop_seconds: float, hop_length: int, seed: int) -> None:
        super().__init__(adapter, adapter._nonempty(split), crop_seconds, hop_length, seed)
        self.split = split

    def _recordings(self, corpus: DatasetAdapter) -> list[Track]:
        """The split's recordings still usable (a decode failure removes one from its corpus)."""
        tracks = corpus.tracks(self.split)
        if not tracks:
            raise DataError(f"{corpus.root}: every {self.split} recording failed to decode; see the warnings")
        return tracks

    def __getitem__(self, index: int) -> dict[str, Any]:
        adapter: MapsGuitarSetAdapter = self.adapter  # type: ignore[assignment]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item = None
        for _ in range(SILENT_CROP_RETRIES + 1):
            piano, guitar = (_by_length(self._recordings(c), rng) for c in (adapter.maps, adapter.guitarset))
            track = adapter.pair(self.split, f"crop{index}", piano, guitar, self.crop, rng)
            try:
                item = adapter.example(track, 0, self.crop, self.hop_length)
            except AudioError:
                continue  # source_audio dropped the recording: the next draw cannot pick it
            if not adapter.drop_silent_crops or not self._has_silent(track, item):
                return item
        if item is None:
            raise DataError(f"{adapter.root}: {SILENT_CROP_RETRIES + 1} draws in a row failed to decode; see the warnings")
        return item  # every retry was silent somewhere: use the last crop rather than stall


def _by_length(tracks: list[Track], rng: np.random.Generator) -> Track:
    """A track drawn with probability proportional to its length."""
    weights = np.array([t.samples for t in tracks], dtype=float)
    return tracks[int(rng.choice(len(tracks), p=weights / weights.sum()))]
