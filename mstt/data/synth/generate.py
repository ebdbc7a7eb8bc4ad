"""`synthesize`: validate the request, then compose, render and write every track in parallel."""

from __future__ import annotations

import difflib
import json
import multiprocessing
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mstt.data.synth.compose import GENERATOR_VERSION, SOURCES, compose
from mstt.data.synth.layout import SPLITS, stale_temp_folders, track_plan, track_uuid, write_track
from mstt.data.synth.render import default_soundfont, mix_stems, render_stem
from mstt.errors import MsttError
from mstt.fileio import remove_stale_tmp, write_text_atomic

MARKER = ".mstt_synth.json"  # names the parameters of the set a folder holds, so a rerun can resume
MAX_EXTRA = 8  # extra parts per track at most
SCRATCH = ".partial"  # tracks being written; renamed into their split folder when complete


@dataclass
class SynthSummary:
    """What one `synthesize` call produced."""

    out: Path
    tracks: int
    per_split: dict[str, int]
    audio_seconds: float  # audio in the whole set (mixtures)
    rendered_seconds: float  # audio rendered by this call (tracks already present are skipped)
    wall_seconds: float
    jobs: int
    skipped: int = 0
    params: dict = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        splits = " / ".join(f"{n} {s}" for s, n in self.per_split.items())
        speed = self.rendered_seconds / max(self.wall_seconds, 1e-9)
        reused = f", {self.skipped} already there" if self.skipped else ""
        return (f"synth: {self.tracks} tracks ({splits}{reused}), {self.audio_seconds / 3600:.3f} h of audio, "
                f"{self.wall_seconds:.1f} s, {speed:.0f}x real time on {self.jobs} jobs -> {self.out}")


def parse_sources(sources: str | Sequence[str]) -> list[str]:
    """Source names from 'a,b' or a list; unknown or repeated names are a one-line MsttError."""
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources) if s.strip()]
    if not names:
        raise MsttError(f"--sources: no source given; choose from {', '.join(SOURCES)}")
    for name in names:
        if name not in SOURCES:
            close = difflib.get_close_matches(name, SOURCES, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise MsttError(f"--sources: unknown source '{name}'; valid: {', '.join(SOURCES)}{hint}")
    if len(set(names)) != len(names):
        raise MsttError(f"--sources: '{','.join(names)}' names a source twice; list each source once")
    return names


def check_soundfont(soundfont: str | os.PathLike | None) -> Path:
    """The soundfont to use (pretty_midi's TimGM6mb.sf2 by default); a missing or non-SF2 file is an error."""
    path = Path(soundfont).expanduser() if soundfont else default_soundfont()
    if not path.is_file():
        raise MsttError(f"--soundfont {path}: file not found; pass an existing .sf2 file")
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise MsttError(f"--soundfont {path}: not a SoundFont 2 file (no RIFF/sfbk header); pass a .sf2 file")
    try:
        import fluidsynth  # fails here, once, rather than in every worker
    except ImportError as exc:
        raise MsttError(f"pyfluidsynth cannot load the FluidSynth library ({exc}); install it, "
                        f"e.g. apt-get install libfluidsynth3") from exc
    synth = fluidsynth.Synth(**{"synth.dynamic-sample-loading": 1})
    try:
        if synth.sfload(str(path)) < 0:  # a damaged file fails now, before any folder is written
            raise MsttError(f"--soundfont {path}: FluidSynth could not load it; pass a valid .sf2 file")
    finally:
        synth.delete()
    return path


def check_soundfonts(soundfonts: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    """One or more checked soundfonts (pretty_midi's TimGM6mb.sf2 when none is given); a repeat is an error."""
    if soundfonts is None or isinstance(soundfonts, (str, os.PathLike)):
        return [check_soundfont(soundfonts)]
    fonts = [check_soundfont(f) for f in soundfonts] or [check_soundfont(None)]
    seen: dict[Path, Path] = {}
    for font in fonts:
        if font.resolve() in seen:
            raise MsttError(f"--soundfont {font}: given twice; list each soundfont once")
        seen[font.resolve()] = font
    return fonts


def soundfont_params(fonts: Sequence[Path]) -> dict:
    """The soundfonts as a set's parameters: name and size (a single one keeps the keys sets always had)."""
    if len(fonts) == 1:
        return {"soundfont": fonts[0].name, "soundfont_bytes": fonts[0].stat().st_size}
    return {"soundfonts": [[f.name, f.stat().st_size] for f in fonts]}


def stem_soundfonts(fonts: Sequence[str], seed: int, index: int, n_stems: int) -> list[str]:
    """The soundfont of each stem of track `index`: one at random per stem when there are several, as
    Slakh2100 renders each stem with its own patch; stem k's choice does not depend on later stems."""
    if len(fonts) == 1:
        return [fonts[0]] * n_stems
    rng = np.random.default_rng([int(seed), int(index), zlib.crc32(b"soundfont")])
    return [fonts[int(i)] for i in rng.integers(len(fonts), size=n_stems)]


def parse_splits(splits: str | Sequence[float]) -> tuple[float, float, float]:
    """Train/validation/test fractions from '0.8,0.1,0.1' or three numbers; normalised to sum to 1."""
    try:
        values = [float(x) for x in (splits.split(",") if isinstance(splits, str) else splits)]
    except ValueError:
        values = []
    if len(values) != 3 or min(values) < 0 or sum(values) <= 0 or values[0] == 0:
        raise MsttError(f"--splits {splits}: give three fractions train,validation,test such as 0.8,0.1,0.1")
    total = sum(values)
    return (values[0] / total, values[1] / total, values[2] / total)


def set_params(names: Sequence[str], tracks: int, seconds: float, seed: int, sample_rate: int,
               fonts: Sequence[Path], fractions: Sequence[float], extra_instruments: int = 0) -> dict:
    """The parameters a set's MARKER holds (checked sources, soundfonts and normalised splits)."""
    params = {"generator_version": GENERATOR_VERSION, "sources": list(names), "tracks": int(tracks),
              "seconds": float(seconds), "seed": int(seed), "sample_rate": int(sample_rate),
              **soundfont_params(fonts), "splits": list(fractions)}
    if extra_instruments:  # only when used, so that sets written before the option still resume
        params["extra_instruments"] = int(extra_instruments)
    return params


def _prepare_out(out: Path, params: dict) -> None:
    """Create `out`, or accept it when it is empty or holds this very set; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise MsttError(f"--out {out}: exists and is not a folder; choose a folder path")
    if out.is_dir() and any(out.iterdir()):
        marker = out / MARKER
        if not marker.is_file():
            raise MsttError(f"--out {out}: folder is not empty and holds no mstt synthetic set; choose an empty or new folder")
        try:
            held = json.loads(marker.read_text())
        except (OSError, ValueError):
            held = None
        if held != params:
            raise MsttError(f"--out {out}: holds a different synthetic set ({marker.name} differs); "
                            f"choose another folder or repeat the original options")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MsttError(f"--out {out}: {probe} is not writable; choose a folder you can write to")
    try:
        for split in SPLITS:
            (out / split).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MsttError(f"--out {out}: cannot write there ({exc.strerror}); choose a writable folder") from exc
    remove_stale_tmp(out, depth=0)  # a marker write that a kill interrupted
    if not (out / MARKER).is_file():  # atomic: a killed write must not leave a marker no rerun accepts
        write_text_atomic(out / MARKER, json.dumps(params, indent=1, sort_keys=True))


def make_track(job: tuple) -> float:
    """Compose, render and write one track (runs in a worker process); returns its seconds of audio."""
    final, index, sources, seconds, seed, sample_rate, soundfonts, scratch, extra = job
    arrangement = compose(sources, seconds, seed, index, extra)
    n_samples = int(round(seconds * sample_rate))
    fonts = stem_soundfonts(soundfonts, seed, index, len(arrangement.instruments))
    raw = [render_stem(inst, sample_rate, n_samples, font) for inst, font in zip(arrangement.instruments, fonts)]
    mix = mix_stems(raw, sample_rate)
    track_id = track_uuid(GENERATOR_VERSION, seed, index, ",".join(sources), seconds, sample_rate)
    write_track(Path(final), arrangement, mix, sample_rate, [Path(f) for f in fonts], track_id, Path(scratch))
    return n_samples / sample_rate


def _make_tracks(pending: list[tuple], jobs: int, progress: bool) -> float:
    """Run :func:`make_track` on every job, in this process (``jobs`` 1) or on ``jobs`` worker
    processes, with a progress bar; returns the seconds of audio rendered."""
    rendered = 0.0
    # disable=None: the bar shows on a terminal and stays out of logs and captured output.
    with tqdm(total=len(pending), unit="track", desc="synth", disable=None if progress else True) as bar:
        if jobs == 1:
            for job in pending:
                rendered += make_track(job)
                bar.update()
        else:
            # spawn: workers start clean, whatever threads (torch, BLAS) the parent already runs
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                for future in as_completed([pool.submit(make_track, job) for job in pending]):
                    rendered += future.result()
                    bar.update()
    return rendered


def synthesize(out: str | os.PathLike, sources: str | Sequence[str], tracks: int, seconds: float = 30.0,
               seed: int = 0, sample_rate: int = 16000,
               soundfont: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
               jobs: int | None = None, splits: str | Sequence[float] = (0.8, 0.1, 0.1),
               progress: bool = True, extra_instruments: int = 0) -> SynthSummary:
    """Write a synthetic set in the Slakh2100 layout under `out`; a rerun with the same options resumes.

    ``extra_instruments`` > 0 adds 0..N more stems to each track, each a random GM program: a
    second part of a class (another guitar) or an instrument of no class (organ, brass, reeds,
    synths), as Slakh2100 songs hold; all are in ``mix.flac``. ``soundfont`` may list several
    soundfonts: each stem is rendered with one of them, picked at random (seeded) per stem.
    """
    names = parse_sources(sources)
    if int(tracks) != tracks or tracks < 1:
        raise MsttError(f"--tracks {tracks}: need a whole number >= 1")
    if not seconds > 0:
        raise MsttError(f"--seconds {seconds}: need a duration > 0")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 96000:
        raise MsttError(f"--sample-rate {sample_rate}: need a whole number of Hz between 8000 and 96000")
    if int(extra_instruments) != extra_instruments or not 0 <= extra_instruments <= MAX_EXTRA:
        raise MsttError(f"--extra-instruments {extra_instruments}: need a whole number from 0 to {MAX_EXTRA}")
    if jobs is not None and jobs < 1:
        raise MsttError(f"--jobs {jobs}: need at least 1 worker")
    fractions = parse_splits(splits)
    fonts = check_soundfonts(soundfont)
    out = Path(out).expanduser()
    params = set_params(names, tracks, seconds, seed, sample_rate, fonts, fractions, extra_instruments)
    _prepare_out(out, params)
    scratch = out / SCRATCH
    scratch.mkdir(exist_ok=True)
    for stale in stale_temp_folders(scratch):  # our own leftovers from a killed run
        shutil.rmtree(stale, ignore_errors=True)
    plan = track_plan(int(tracks), fractions)
    pending = [(str(out / split / name), index, names, float(seconds), int(seed), int(sample_rate),
                tuple(str(f) for f in fonts),
                str(scratch), int(extra_instruments)) for index, split, name in plan if not (out / split / name).is_dir()]
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(len(pending), 1)))
    start = time.perf_counter()
    try:
        rendered = _make_tracks(pending, jobs, progress)
    finally:
        try:
            scratch.rmdir()
        except OSError:
            pass  # a worker's folder is still in there: the next run clears it
    per_split = {s: sum(1 for _, split, _ in plan if split == s) for s in SPLITS}
    n_samples = int(round(seconds * sample_rate))
    return SynthSummary(out, int(tracks), per_split, len(plan) * n_samples / sample_rate, rendered,
                        time.perf_counter() - start, jobs, len(plan) - len(pending), params)
