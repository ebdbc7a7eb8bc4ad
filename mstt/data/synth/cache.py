"""A synthetic set generated once per parameter set under $MSTT_CACHE/synth/<key> and reused afterwards."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mstt.data.synth.compose import GENERATOR_VERSION
from mstt.data.synth.generate import check_soundfonts, parse_sources, synthesize

COMPLETE = "COMPLETE"  # written last inside the temporary folder: only folders holding it are reused


def cache_root() -> Path:
    """$MSTT_CACHE, or ~/.cache/mstt."""
    return Path(os.environ.get("MSTT_CACHE") or Path.home() / ".cache" / "mstt").expanduser()


def cache_key(sources: Sequence[str], tracks: int, seconds: float, seed: int, sample_rate: int,
              fonts: Sequence[Path], splits: Sequence[float], extra_instruments: int = 0) -> str:
    """A short hash of every parameter that changes the set, the soundfonts' names and sizes included."""
    params = {"version": GENERATOR_VERSION, "sources": list(sources), "tracks": int(tracks),
              "seconds": float(seconds), "seed": int(seed), "sample_rate": int(sample_rate),
              "splits": [float(x) for x in splits]}
    if len(fonts) == 1:  # the key a one-soundfont set always had
        params["soundfont"] = [fonts[0].name, fonts[0].stat().st_size]
    else:
        params["soundfonts"] = [[f.name, f.stat().st_size] for f in fonts]
    if extra_instruments:  # only when used: caches written before the option keep their keys
        params["extra_instruments"] = int(extra_instruments)
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def ensure_synthetic_set(sources: str | Sequence[str], tracks: int, seconds: float, seed: int,
                         sample_rate: int, soundfont: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                         jobs: int | None = None,
                         splits: Sequence[float] = (0.8, 0.1, 0.1), progress: bool = False,
                         extra_instruments: int = 0) -> Path:
    """The folder of a complete synthetic set with these parameters, generating it on first use."""
    names = parse_sources(sources)
    fonts = check_soundfonts(soundfont)
    root = cache_root() / "synth"
    final = root / cache_key(names, tracks, seconds, seed, sample_rate, fonts, splits, extra_instruments)
    if (final / COMPLETE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        synthesize(tmp, names, tracks, seconds, seed, sample_rate, fonts, jobs, splits, progress, extra_instruments)
        (tmp / COMPLETE).write_text("complete\n")
        _publish(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # ours: an unfinished set, or a duplicate of a winner's
    if not (final / COMPLETE).is_file():
        raise RuntimeError(f"synthetic set {final} vanished while it was being published")
    return final


def _publish(tmp: Path, final: Path) -> None:
    """Rename tmp to final; if another process got there first with a complete set, keep theirs."""
    for _ in range(3):
        try:
            os.rename(tmp, final)
            return
        except OSError:
            if (final / COMPLETE).is_file():
                return  # another process finished first: use theirs, ours is removed by the caller
            if final.is_dir():
                # An incomplete leftover in the cache (never a user's folder): move it aside, then drop it.
                aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".stale", dir=final.parent))
                try:
                    os.rename(final, aside / "set")
                except OSError:
                    pass
                shutil.rmtree(aside, ignore_errors=True)
    os.rename(tmp, final)
