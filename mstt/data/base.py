"""What every dataset adapter provides: tracks per split, a summary, and torch datasets.

The example contract (every item of :meth:`DatasetAdapter.training_dataset` and
:meth:`DatasetAdapter.evaluation_dataset`) is :class:`Example`. An adapter subclass only has
to fill its splits with :class:`Track` objects (``_add``) and report what it could not use
(``_skip``); decoding, the cache, cropping and targets live here.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional, TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from mstt.constants import SILENT_CROP_PEAK
from mstt.data.audio import AudioCache, AudioError, CachedAudio, fit_length, read_audio
from mstt.data.classes import is_instrument
from mstt.data.targets import MIN_VELOCITY, n_frames, stacked_rolls, window_notes
from mstt.errors import DataError

SPLITS = ("train", "validation", "test")
SILENT_CROP_RETRIES = 10
MIN_TAIL_SECONDS = 1.0  # an evaluation track's last, shorter window is kept when this long
# Key in Track.stems of audio that sounds in the mixture but belongs to no source (a song's organ
# or sax when the recipe separates piano and guitar): the model hears it and must leave it out.
ACCOMPANIMENT = "_accompaniment"


@dataclass
class CropOptions:
    """Options every dataset adapter takes (its ``data.options``): how crops and roll targets are made."""

    drop_silent_crops: bool = True  # redraw a training crop (up to 10 times) when a source is silent
    silence_threshold: float = SILENT_CROP_PEAK  # peak below which a source counts as silent in a crop
    min_velocity: int = MIN_VELOCITY  # notes below it are left out of the roll targets

    def adapter_settings(self) -> dict[str, Any]:
        """These options as :class:`DatasetAdapter`'s keyword arguments (with ``cache_dir`` when present)."""
        return {f.name: getattr(self, f.name) for f in fields(AdapterOptions) if hasattr(self, f.name)}


@dataclass
class AdapterOptions(CropOptions):
    """:class:`CropOptions` and the decoded-audio cache, for adapters that read a dataset folder."""

    cache_dir: Optional[str] = None  # decoded-audio cache; None: $MSTT_CACHE or ~/.cache/mstt


class Example(TypedDict, total=False):
    """One dataset item; ``notes`` only in evaluation items."""

    mixture: torch.Tensor  # float32 (samples,): the sum of ``sources`` plus any accompaniment
    sources: torch.Tensor  # float32 (n_sources, samples), in the adapter's source order
    roll: torch.Tensor  # float32 (n_sources, 88, frames), frames = 1 + samples // hop
    onset: torch.Tensor  # float32 (n_sources, 88, frames)
    track: str
    start: float  # seconds into the track
    notes: list[np.ndarray]  # per source, float64 (n, 4): onset_s, offset_s, pitch, velocity


@dataclass(eq=False)  # identity: tracks hold arrays, and one track is one object
class Track:
    """One usable track: the audio files summed into each source and each source's notes."""

    name: str
    split: str
    path: Path
    samples: int  # length at the adapter's sample rate
    sample_rate: int
    stems: dict[str, tuple[Path, ...]]  # source (or ACCOMPANIMENT) -> audio files summed into it; () is silent
    notes: dict[str, np.ndarray]  # source -> float64 (n, 4), seconds from the track start

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples / self.sample_rate


class DatasetAdapter:
    """Base class of dataset adapters: subclasses scan ``root`` in ``__init__``."""

    layout: str | None = None  # how the subclass found the splits, shown in the summary

    def __init__(
        self,
        root: str | Path,
        sources: list[str],
        sample_rate: int,
        *,
        cache_dir: str | Path | None = None,
        min_velocity: int = MIN_VELOCITY,
        drop_silent_crops: bool = False,
        silence_threshold: float = SILENT_CROP_PEAK,
    ) -> None:
        self.root = Path(root).expanduser()
        self.sources = list(sources)
        self.sample_rate = int(sample_rate)
        self.min_velocity = min_velocity
        self.drop_silent_crops = drop_silent_crops
        self.silence_threshold = silence_threshold
        self.cache = AudioCache(cache_dir)
        self._tracks: dict[str, list[Track]] = {split: [] for split in SPLITS}
        self._skipped: list[dict[str, str]] = []
        self._skip_kinds: list[str] = []
        self._skip_splits: list[str | None] = []  # the split each skipped track would have been in, if known
        self._left_out: list[dict[str, str]] = []  # parts of usable tracks left out by design (information)
        self._loaded: dict[tuple[str, str], CachedAudio | None] = {}

    # -- filled by subclasses -------------------------------------------------------------
    def _add(self, track: Track) -> None:
        """Make a track usable in its split."""
        self._tracks[track.split].append(track)

    def _skip(self, path: Path, kind: str, detail: str = "", split: str | None = None) -> None:
        """Record an unusable track; ``kind`` groups reasons for the nothing-usable error.

        ``split`` (when known) lets an evaluation of that split say which of its tracks it lacks.
        """
        self._skipped.append({"path": str(path), "reason": f"{kind}: {detail}" if detail else kind})
        self._skip_kinds.append(kind)
        self._skip_splits.append(split)

    def _leave_out(self, path: Path, part: str, reason: str) -> None:
        """Record a part of a usable track (e.g. one stem) that is left out by design: information, not an error."""
        self._left_out.append({"path": str(path), "part": part, "reason": reason})

    def _require_tracks(self) -> None:
        """Raise one-line DataError when no split holds a usable track."""
        if any(self._tracks.values()):
            return
        if not self._skipped:
            raise DataError(f"{self.root}: no tracks found; check the path and the dataset kind")
        kind, count = Counter(self._skip_kinds).most_common(1)[0]
        example = next(s["path"] for s, k in zip(self._skipped, self._skip_kinds) if k == kind)
        raise DataError(
            f"{self.root}: no usable tracks; all {len(self._skipped)} skipped, most often for "
            f"'{kind}' ({count}, e.g. {example}); run `mstt data` on it to list every reason"
        )

    # -- public API -------------------------------------------------------------------------
    def tracks(self, split: str) -> list[Track]:
        """The usable tracks of ``split`` (train, validation or test)."""
        if split not in self._tracks:
            raise DataError(f"{self.root}: unknown split '{split}'; splits are {', '.join(SPLITS)}")
        return list(self._tracks[split])

    @property
    def skipped(self) -> list[dict[str, str]]:
        """Every unusable track as ``{"path", "reason"}``."""
        return [dict(s) for s in self._skipped]

    def skipped_in(self, split: str) -> list[dict[str, str]]:
        """The unusable tracks that belong to ``split`` (those of no known split are in :attr:`skipped` only)."""
        return [dict(s) for s, where in zip(self._skipped, self._skip_splits) if where == split]

    @property
    def left_out(self) -> list[dict[str, str]]:
        """Parts of usable tracks left out by design, as ``{"path", "part", "reason"}`` (not errors)."""
        return [dict(s) for s in self._left_out]

    def summary(self, hop_length: int = 256, crop_seconds: float = 2.0) -> dict[str, Any]:
        """Tracks, examples (training crops of ``crop_seconds``) and seconds per split and source."""
        splits = {}
        for split, tracks in self._tracks.items():
            seconds = sum(t.seconds for t in tracks)
            splits[split] = {
                "tracks": len(tracks),
                "examples": _epoch_length(seconds, crop_seconds) if tracks else 0,
                "seconds": round(seconds, 3),
                "frames": sum(n_frames(t.samples, hop_length) for t in tracks),
            }
        sources = {}
        for source in self.sources:
            present = [t for ts in self._tracks.values() for t in ts if t.stems.get(source)]
            sources[source] = {"tracks": len(present), "seconds": round(sum(t.seconds for t in present), 3)}
        return {
            "root": str(self.root),
            "layout": self.layout,
            "sample_rate": self.sample_rate,
            "splits": splits,
            "sources": sources,
            "skipped": self.skipped,
            "left_out": self.left_out,
        }

    def training_dataset(self, split: str, crop_seconds: float, hop_length: int, seed: int) -> "TrainingDataset":
        """Random crops of ``crop_seconds`` from the tracks of ``split``; see :class:`Example`."""
        return TrainingDataset(self, self._nonempty(split), crop_seconds, hop_length, seed)

    def evaluation_dataset(
        self, split: str, hop_length: int, segment_seconds: float | None
    ) -> "EvaluationDataset":
        """Consecutive windows of ``segment_seconds`` (whole tracks when None), with notes.

        Decodes the split into the cache first; a track that fails to decode is skipped.
        """
        tracks = self.prepare(split)
        if not tracks:
            self._nonempty(split)  # raises: every track of the split failed to decode
        return EvaluationDataset(self, tracks, hop_length, segment_seconds)

    def prepare(self, split: str) -> list[Track]:
        """Decode every track of ``split`` into the cache; return those that decoded."""
        good = []
        for track in self.tracks(split):
            try:
                for source in [*self.sources, ACCOMPANIMENT]:
                    self.source_audio(track, source)
            except AudioError as exc:
                self._drop(track, exc)
                continue
            good.append(track)
        return good

    # -- audio --------------------------------------------------------------------------------
    def decode_source(self, track: Track, source: str) -> np.ndarray:
        """Sum of the source's audio files at the adapter's rate: float32 ``(track.samples,)``."""
        total = np.zeros(track.samples, dtype=np.float32)
        for path in track.stems.get(source, ()):
            total += fit_length(read_audio(path, self.sample_rate), track.samples)
        return total

    def source_audio(self, track: Track, source: str) -> CachedAudio | None:
        """A source's decoded audio in the cache (decoded on first use); None when silent.

        Raises AudioError when decoding fails.
        """
        key = (str(track.path), source)
        if key in self._loaded:
            return self._loaded[key]
        stems = track.stems.get(source, ())
        if not stems:
            self._loaded[key] = None
            return None
        entry = self.cache.entry(track.path, source, stems, self.sample_rate)
        loaded = self.cache.load(entry, track.samples)
        if loaded is None:
            audio = self.decode_source(track, source)
            try:
                loaded = self.cache.store(entry, audio)
            except OSError as exc:
                raise DataError(
                    f"cannot write the audio cache under {self.cache.root} ({exc.strerror or exc}); "
                    f"set MSTT_CACHE to a writable folder with space"
                ) from exc
        self._loaded[key] = loaded
        return loaded

    def example(self, track: Track, start: int, samples: int, hop_length: int) -> dict[str, Any]:
        """The item for ``samples`` from sample ``start`` of ``track`` (zero-padded past its end)."""
        sources = np.zeros((len(self.sources), samples), dtype=np.float32)
        for i, source in enumerate(self.sources):
            audio = self.source_audio(track, source)
            if audio is not None:
                seg = audio.read(start, samples)
                sources[i, : len(seg)] = seg
        mixture = sources.sum(axis=0)
        accompaniment = self.source_audio(track, ACCOMPANIMENT)
        if accompaniment is not None:
            seg = accompaniment.read(start, samples)
            mixture[: len(seg)] += seg
        notes = [track.notes.get(s, np.zeros((0, 4))) for s in self.sources]
        roll, onset = stacked_rolls(
            notes, start / self.sample_rate, samples, self.sample_rate, hop_length, self.min_velocity
        )
        return {
            "mixture": torch.from_numpy(mixture),
            "sources": torch.from_numpy(sources),
            "roll": torch.from_numpy(roll),
            "onset": torch.from_numpy(onset),
            "track": track.name,
            "start": start / self.sample_rate,
        }

    def _drop(self, track: Track, exc: Exception) -> None:
        """Move a track that failed to decode from its split to the skipped list."""
        if track in self._tracks[track.split]:
            self._tracks[track.split].remove(track)
            self._skip(track.path, "undecodable audio", str(exc), split=track.split)
            warnings.warn(f"{track.path}: skipped, {exc}", stacklevel=3)

    def _nonempty(self, split: str) -> list[Track]:
        """The tracks of ``split``; DataError when there are none."""
        tracks = self.tracks(split)
        if not tracks:
            counts = ", ".join(f"{s}: {len(t)}" for s, t in self._tracks.items())
            raise DataError(f"{self.root}: split '{split}' holds no usable tracks ({counts})")
        return tracks


def _epoch_length(seconds: float, crop_seconds: float) -> int:
    """Crops in an epoch: about the total duration over the crop length, at least 1."""
    return max(1, round(seconds / crop_seconds))


class TrainingDataset(Dataset):
    """Random crops, drawn in proportion to track length; item ``i`` depends on (seed, epoch, i)."""

    def __init__(
        self, adapter: DatasetAdapter, tracks: list[Track], crop_seconds: float, hop_length: int, seed: int
    ) -> None:
        self.adapter = adapter
        self.tracks = list(tracks)
        self.crop = max(1, round(crop_seconds * adapter.sample_rate))
        self.hop_length = hop_length
        self.seed = seed
        self.epoch = 0
        self._length = _epoch_length(sum(t.seconds for t in self.tracks), crop_seconds)
        self._bad: set[int] = set()

    def set_epoch(self, epoch: int) -> None:
        """Draw different crops in each epoch (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item = None
        attempts = SILENT_CROP_RETRIES + 1 + len(self.tracks)
        for _ in range(attempts):
            track = self._pick(rng)
            start = int(rng.integers(0, max(0, track.samples - self.crop) + 1))
            try:
                item = self.adapter.example(track, start, self.crop, self.hop_length)
            except AudioError as exc:
                # A decode error shows up only here (headers were fine): never end the epoch.
                self._bad.add(self.tracks.index(track))
                self.adapter._drop(track, exc)
                continue
            if not self.adapter.drop_silent_crops or not self._has_silent(track, item):
                return item
        if item is None:
            raise DataError(f"{self.adapter.root}: every track tried failed to decode; see the warnings")
        return item  # every retry was silent somewhere: use the last crop rather than stall

    def _pick(self, rng: np.random.Generator) -> Track:
        """A track drawn with probability proportional to its length."""
        weights = np.array([0 if i in self._bad else t.samples for i, t in enumerate(self.tracks)], float)
        if weights.sum() <= 0:
            raise DataError(f"{self.adapter.root}: every training track failed to decode; see the warnings")
        return self.tracks[int(rng.choice(len(self.tracks), p=weights / weights.sum()))]

    def _has_silent(self, track: Track, item: dict[str, Any]) -> bool:
        """Whether a source the track holds is silent in this crop."""
        peaks = item["sources"].abs().amax(dim=1)
        # OTHER is sparse (an organ that plays one verse): its silence is no reason to redraw.
        present = [i for i, s in enumerate(self.adapter.sources) if track.stems.get(s) and is_instrument(s)]
        return bool(present) and bool((peaks[present] < self.adapter.silence_threshold).any())


class EvaluationDataset(Dataset):
    """Fixed consecutive windows of every track (or whole tracks), each with its notes."""

    def __init__(
        self, adapter: DatasetAdapter, tracks: list[Track], hop_length: int, segment_seconds: float | None
    ) -> None:
        self.adapter = adapter
        self.hop_length = hop_length
        sr = adapter.sample_rate
        self.windows: list[tuple[Track, int, int]] = []  # (track, start sample, samples)
        for track in tracks:
            if segment_seconds is None:
                self.windows.append((track, 0, track.samples))
                continue
            seg = max(1, round(segment_seconds * sr))
            for start in range(0, track.samples, seg):
                length = min(seg, track.samples - start)
                if start == 0 or length >= MIN_TAIL_SECONDS * sr:
                    self.windows.append((track, start, length))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        track, start, samples = self.windows[index]
        item = self.adapter.example(track, start, samples, self.hop_length)
        sr = self.adapter.sample_rate
        item["notes"] = [
            window_notes(track.notes.get(s, np.zeros((0, 4))), start / sr, samples / sr)
            for s in self.adapter.sources
        ]
        return item
