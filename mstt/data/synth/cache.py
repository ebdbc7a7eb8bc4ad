"""A synthetic set generated once per parameter set under $MSTT_CACHE/synth/<key> and reused afterwards.

The set is rendered into ``.KEY.partial`` while holding the lock ``.KEY.lock``, then renamed to
``KEY`` once complete. A second process wanting the same set waits for the first and uses its set;
a render that was killed (SIGKILL, a closed terminal, a machine gone) is resumed by the next one,
which skips the tracks already written (each is renamed into place only once complete and on
disk) and gives the same files as a render never interrupted, since every track is drawn from its
own seed (seed, track index). Leftovers of killed renders are handled by leftovers.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from mstt.data.synth.compose import GENERATOR_VERSION
from mstt.data.synth.generate import check_soundfonts, parse_sources, parse_splits, set_params, synthesize
from mstt.data.synth.leftovers import check_partial, done_tracks, lock_path, partial_path, sweep
from mstt.runlock import say, waiting_lock

COMPLETE = "COMPLETE"  # written last inside the partial folder: only folders holding it are reused


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
    """The folder of a complete synthetic set with these parameters, generating (or resuming) it on first use."""
    names = parse_sources(sources)
    fonts = check_soundfonts(soundfont)
    root = cache_root() / "synth"
    key = cache_key(names, tracks, seconds, seed, sample_rate, fonts, splits, extra_instruments)
    final = root / key
    if (final / COMPLETE).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)

    def waiting(holder: str) -> str:
        return f"waiting for {holder} to finish rendering synthetic set {key}, which this process needs too"

    with waiting_lock(lock_path(root, key), "synthetic set render", waiting) as gone:
        if (final / COMPLETE).is_file():
            return final  # the process we waited for rendered it
        params = set_params(names, tracks, seconds, seed, sample_rate, fonts, parse_splits(splits), extra_instruments)
        partial = _resumable(root, key, params, gone)
        synthesize(partial, names, tracks, seconds, seed, sample_rate, fonts, jobs, splits, progress, extra_instruments)
        _publish(partial, final)
    if not (final / COMPLETE).is_file():
        raise RuntimeError(f"synthetic set {final} vanished while it was being published")
    return final


def _resumable(root: Path, key: str, params: dict, gone: str) -> Path:
    """The partial folder of ``key``, leftovers swept; one line when a render resumes in it."""
    partial = partial_path(root, key)
    adopted = sweep(root, key)
    note = check_partial(partial, params)
    if partial.is_dir():
        whose = f"left by {gone}, which is gone" if gone else ""
        whose = f"from {adopted.name}, an earlier version's folder" if adopted else whose
        extra = "; ".join(x for x in (whose, note) if x)
        say(f"resuming the render of synthetic set {key}: {done_tracks(partial)} of {params['tracks']} "
            f"tracks already done" + (f" ({extra})" if extra else ""))
    elif note:
        say(note)
    return partial


def _publish(partial: Path, final: Path) -> None:
    """Mark ``partial`` complete and rename it to ``final``; a complete ``final`` already there (an
    earlier version's process, which took no lock, finished first) is kept and ours dropped."""
    with open(partial / COMPLETE, "w") as fh:
        fh.write("complete\n")
        fh.flush()
        os.fsync(fh.fileno())  # on disk before the rename publishes it
    if (final / COMPLETE).is_file():
        shutil.rmtree(partial, ignore_errors=True)
        return
    if final.exists():  # an incomplete leftover in the cache (never a user's folder), ours to replace under the lock
        shutil.rmtree(final)
    os.rename(partial, final)
