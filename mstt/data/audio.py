"""Audio input: probe, read + downmix + resample, and the decoded int16 memmap cache."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mstt.errors import MsttError

# Bump when the cache's file format or the decoding changes, so old entries are not reused.
CACHE_VERSION = 1
CACHE_ENV = "MSTT_CACHE"
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class AudioError(MsttError):
    """An audio file cannot be opened or decoded (the adapter turns it into a skip reason; elsewhere one line)."""


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


def wav_truncation(path: Path) -> str | None:
    """Why a RIFF/WAVE file is cut short (its data chunk claims more bytes than follow), else None.

    libsndfile silently shortens such a file to the bytes present, so the header must be read
    here: a truncated download would otherwise pass as a shorter recording with notes past its end.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # not plain RIFF (RF64, another format): libsndfile's own checks apply
        block = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return "truncated: no data chunk"
            cid, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(length + (length & 1))
                block = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else 0
            elif cid == b"data":
                have = size - f.tell()
                if length in (0, 0xFFFFFFFF) or length <= have:
                    return None  # streamed files leave the size unset; nothing to compare
                frames = f"{length // block} frames, file holds {have // block}" if block else f"{length} bytes, file holds {have}"
                return f"truncated: header says {frames}"
            else:
                f.seek(length + (length & 1), 1)


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
        reason = wav_truncation(path) if path.suffix.lower() == ".wav" else None
        if reason:
            # libsndfile reads a cut-short wav as a shorter file, so the header must be compared.
            raise AudioError(f"{_short(path)} is {reason}")
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
    if not np.isfinite(data).all():  # float WAVs can hold them; the int16 cache would turn them into noise
        raise AudioError(f"{_short(path)} holds NaN or infinite samples; repair or re-export it")
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


@dataclass(frozen=True)
class CachedAudio:
    """A decoded source in the cache: an int16 ``.npy`` file (memmap-able) and its scale.

    Crops are read with positioned reads rather than kept as memmaps: every memmap holds a
    file descriptor, and thousands of tracks per DataLoader worker would exhaust them.
    """

    path: Path
    offset: int  # bytes of .npy header before the samples
    samples: int
    scale: float

    def read(self, start: int, count: int) -> np.ndarray:
        """float32 samples ``[start, start + count)``, shorter when that passes the end."""
        start = max(0, start)
        count = max(0, min(count, self.samples - start))
        with open(self.path, "rb") as f:
            f.seek(self.offset + 2 * start)
            data = np.fromfile(f, dtype="<i2", count=count)
        if len(data) != count:
            raise AudioError(f"cache file {self.path} shrank; delete it and run again")
        return data.astype(np.float32) * np.float32(self.scale)


class AudioCache:
    """Decoded sources as int16 ``.npy`` files, one folder per track, written atomically.

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

    def load(self, entry: Path, samples: int) -> CachedAudio | None:
        """The complete entry of ``samples`` samples, or None (absent, partial or corrupt)."""
        npy, meta = entry.with_suffix(".npy"), entry.with_suffix(".json")
        try:
            info = json.loads(meta.read_text())
            if info.get("version") != CACHE_VERSION or info.get("samples") != samples:
                return None
            with open(npy, "rb") as f:
                version = np.lib.format.read_magic(f)
                if version not in _HEADER_READERS:
                    return None
                shape, fortran, dtype = _HEADER_READERS[version](f)
                offset = f.tell()
            size = npy.stat().st_size
        except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
            return None
        if shape != (samples,) or dtype != np.int16 or fortran or size != info.get("bytes") or size != offset + 2 * samples:
            return None
        return CachedAudio(npy, offset, samples, float(info["scale"]))

    def store(self, entry: Path, audio: np.ndarray) -> CachedAudio:
        """Quantise float audio ``(samples,)`` to int16 with a peak scale and write it."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        # Per-entry scale: summed stems may exceed 1.0, and quiet stems keep their resolution.
        scale = peak / 32767.0 if peak > 0 else 1.0
        q = np.clip(np.rint(audio / scale), -32767, 32767).astype("<i2")
        npy = entry.with_suffix(".npy")
        _atomic_write(npy, lambda p: _save(p, q))
        size = npy.stat().st_size
        info = {"version": CACHE_VERSION, "samples": len(q), "scale": scale, "bytes": size}
        _atomic_write(entry.with_suffix(".json"), lambda p: p.write_text(json.dumps(info)))
        return CachedAudio(npy, size - 2 * len(q), len(q), scale)

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
