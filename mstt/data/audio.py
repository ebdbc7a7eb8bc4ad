"""Audio input: probe, read + downmix + resample, and the decoded int16 memmap cache."""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

# Bump when the cache's file format or the decoding changes, so old entries are not reused.
CACHE_VERSION = 1
CACHE_ENV = "MSTT_CACHE"


class AudioError(Exception):
    """An audio file cannot be opened or decoded (the adapter turns it into a skip reason)."""


def resampled_length(frames: int, sr_in: int, sr_out: int) -> int:
    """Length of ``frames`` samples at ``sr_in`` after :func:`resample` to ``sr_out``."""
    if sr_in == sr_out:
        return frames
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    return -(-frames * up // down)  # resample_poly returns ceil(n * up / down) samples


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling along the last axis: ``(..., n)`` -> ``(..., ceil(n*out/in))``."""
    if sr_in == sr_out:
        return audio
    g = math.gcd(sr_in, sr_out)
    out = resample_poly(audio, sr_out // g, sr_in // g, axis=-1)
    return out.astype(np.float32, copy=False)


def probe(path: Path, verify_tail: bool = True) -> tuple[int, int]:
    """(frames, sample_rate) from the header; with ``verify_tail``, decode the last block too.

    A truncated FLAC (an interrupted download) has an intact header, so only decoding its
    end reveals it; seeking there costs about a millisecond.
    """
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types for unreadable files
        raise AudioError(f"cannot open {_short(path)}: {exc}") from exc
    if info.frames <= 0:
        raise AudioError(f"{_short(path)} holds no audio frames")
    if verify_tail:
        try:
            with sf.SoundFile(str(path)) as f:
                f.seek(max(0, info.frames - 2048))
                tail = f.read(2048, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(f"{_short(path)} is truncated or corrupt: {exc}") from exc
        if len(tail) != min(2048, info.frames):
            raise AudioError(f"{_short(path)} is truncated: header says {info.frames} frames")
    return info.frames, info.samplerate


def read_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Decode a file to mono float32 at ``sample_rate``: ``(samples,)``; AudioError on failure."""
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(f"cannot decode {_short(path)}: {exc}") from exc
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(np.ascontiguousarray(mono), sr, sample_rate)


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Zero-pad or trim ``(n,)`` to ``(samples,)``."""
    if len(audio) >= samples:
        return audio[:samples]
    return np.pad(audio, (0, samples - len(audio)))


def default_cache_dir() -> Path:
    """``$MSTT_CACHE`` or ``~/.cache/mstt``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mstt")


def file_stamp(paths: Iterable[Path]) -> list[list]:
    """(absolute path, size, mtime_ns) of each file: what a cache key must change with."""
    stamp = []
    for p in paths:
        st = p.stat()
        stamp.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return stamp


def digest(value: object, n: int = 16) -> str:
    """A short stable hash of a JSON-serialisable value."""
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:n]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class AudioCache:
    """Decoded sources as int16 ``.npy`` memmaps, one folder per track, written atomically.

    Layout: ``<root>/audio/<track key>/<source>-<stem key>.npy`` plus a ``.json`` sidecar
    (scale, samples, byte size) written after the array: an entry without a matching
    sidecar is partial or corrupt and is decoded again.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry(self, track_path: Path, source: str, stems: Iterable[Path], sample_rate: int) -> Path:
        """The cache path (without suffix) of one track's source at one sample rate."""
        track_key = digest([CACHE_VERSION, str(track_path.resolve()), sample_rate])
        stem_key = digest(file_stamp(stems), 12)
        return self.root / "audio" / track_key / f"{source}-{stem_key}"

    def load(self, entry: Path, samples: int) -> tuple[np.ndarray, float] | None:
        """(int16 memmap ``(samples,)``, scale) of a complete entry, or None."""
        npy, meta = entry.with_suffix(".npy"), entry.with_suffix(".json")
        try:
            info = json.loads(meta.read_text())
            if (
                info.get("version") != CACHE_VERSION
                or info.get("samples") != samples
                or npy.stat().st_size != info.get("bytes")
            ):
                return None
            data = np.load(npy, mmap_mode="r")
        except (OSError, ValueError, json.JSONDecodeError):
            return None
        if data.dtype != np.int16 or data.shape != (samples,):
            return None
        return data, float(info["scale"])

    def store(self, entry: Path, audio: np.ndarray) -> tuple[np.ndarray, float]:
        """Quantise float audio ``(samples,)`` to int16 with a peak scale and write it."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        # Per-entry scale: summed stems may exceed 1.0, and quiet stems keep their resolution.
        scale = peak / 32767.0 if peak > 0 else 1.0
        q = np.clip(np.rint(audio / scale), -32767, 32767).astype(np.int16)
        npy = entry.with_suffix(".npy")
        _atomic_write(npy, lambda p: _save(p, q))
        info = {"version": CACHE_VERSION, "samples": len(q), "scale": scale, "bytes": npy.stat().st_size}
        _atomic_write(entry.with_suffix(".json"), lambda p: p.write_text(json.dumps(info)))
        return np.load(npy, mmap_mode="r"), scale

    def notes_path(self, midi_files: Iterable[Path]) -> Path:
        """Where the parsed notes of a set of MIDI files are kept."""
        return self.root / "notes" / f"{digest([CACHE_VERSION, file_stamp(midi_files)])}.npy"

    def load_notes(self, path: Path) -> np.ndarray | None:
        """Cached notes ``(n, 4)`` float64, or None when absent or unreadable."""
        try:
            notes = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if notes.dtype != np.float64 or notes.ndim != 2 or notes.shape[1] != 4:
            return None
        return notes

    def store_notes(self, path: Path, notes: np.ndarray) -> None:
        """Write notes ``(n, 4)`` atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda p: _save(p, notes))


def _save(path: Path, array: np.ndarray) -> None:
    """np.save to an exact path (np.save appends .npy to names without it)."""
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _short(path: Path) -> str:
    """``folder/name`` of a file, enough to find it inside a track."""
    return f"{path.parent.name}/{path.name}"
