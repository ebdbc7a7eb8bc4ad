"""The Slakh2100 folder layout: split assignment, metadata.yaml and atomic track writing."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import yaml

from mstt.data.classes import source_class
from mstt.data.synth.compose import Arrangement
from mstt.data.synth.render import NORMALIZATION_DB, TARGET_PEAK_DB, Mix

SPLITS: tuple[str, ...] = ("train", "validation", "test")
INST_CLASS = {"piano": "Piano", "guitar": "Guitar", "bass": "Bass", "drums": "Drums", "strings": "Strings"}
DRUM_PROGRAM = 128  # Slakh's program_num for drum stems


def split_counts(tracks: int, fractions: tuple[float, float, float]) -> list[int]:
    """Tracks per split by largest remainder; with >= 3 tracks every split with a positive fraction gets one."""
    total = sum(fractions)
    ideal = [tracks * f / total for f in fractions]
    counts = [int(np.floor(x)) for x in ideal]
    for i in sorted(range(3), key=lambda i: ideal[i] - counts[i], reverse=True)[: tracks - sum(counts)]:
        counts[i] += 1
    if tracks >= 3:
        for i in range(3):
            if fractions[i] > 0 and counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return counts


def track_plan(tracks: int, fractions: tuple[float, float, float]) -> list[tuple[int, str, str]]:
    """(index, split, TrackXXXXX) for every track; numbering is global: train first, then validation, test."""
    plan = []
    index = 0
    for split, count in zip(SPLITS, split_counts(tracks, fractions)):
        for _ in range(count):
            plan.append((index, split, f"Track{index + 1:05d}"))
            index += 1
    return plan


def track_uuid(*parts: object) -> str:
    """A stable 32-hex-digit id derived from the track's generating parameters."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return uuid.UUID(bytes=digest[:16]).hex


def inst_class(source: str, inst: pretty_midi.Instrument) -> str:
    """Slakh's ``inst_class`` of a stem: its class's, or for a stem of the catch-all source (which owns
    instruments of many families) pretty_midi's family of its program."""
    if source_class(source).catch_all:
        return pretty_midi.program_to_instrument_class(inst.program)
    return INST_CLASS[source]


def metadata(arrangement: Arrangement, mix: Mix, soundfonts: list[Path], track_id: str) -> dict:
    """metadata.yaml contents with Slakh's keys; stems S00.. in the arrangement's source order, each
    naming the soundfont that rendered it as its ``plugin_name``."""
    stems = {}
    for i, (name, inst, soundfont) in enumerate(zip(arrangement.sources, arrangement.instruments, soundfonts)):
        stems[f"S{i:02d}"] = {
            "audio_rendered": True,
            "inst_class": inst_class(name, inst),
            "integrated_loudness": round(float(mix.loudness[i]), 3),
            "is_drum": bool(inst.is_drum),
            "midi_program_name": "Drums" if inst.is_drum else pretty_midi.program_to_instrument_name(inst.program),
            "midi_saved": True,
            "plugin_name": soundfont.name,
            "program_num": DRUM_PROGRAM if inst.is_drum else int(inst.program),
        }
    return {
        "UUID": track_id,
        "audio_dir": "stems",
        "lmd_midi_dir": f"mstt-synth/{track_id}.mid",
        "midi_dir": "MIDI",
        "normalization_factor": NORMALIZATION_DB,
        "normalized": True,
        "overall_gain": round(float(mix.overall_gain), 6),
        "target_peak": TARGET_PEAK_DB,
        "stems": stems,
    }


def write_track(final: Path, arrangement: Arrangement, mix: Mix, sample_rate: int, soundfonts: list[Path],
                track_id: str, scratch: Path) -> None:
    """Write one track into a temporary folder under `scratch` and rename it to `final` once complete and
    on disk: a track folder in its split is whole, even after a kill or a power cut."""
    # scratch sits outside the split folders, so readers listing a split never see a half-written track.
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.", suffix=".tmp", dir=scratch))
    try:
        (tmp / "stems").mkdir()
        (tmp / "MIDI").mkdir()
        for i, stem in enumerate(mix.stems):
            sf.write(tmp / "stems" / f"S{i:02d}.flac", stem, sample_rate, subtype="PCM_16", format="FLAC")
            arrangement.to_midi(only=i).write(str(tmp / "MIDI" / f"S{i:02d}.mid"))
        sf.write(tmp / "mix.flac", mix.mix, sample_rate, subtype="PCM_16", format="FLAC")
        arrangement.to_midi().write(str(tmp / "all_src.mid"))
        with open(tmp / "metadata.yaml", "w") as fh:
            yaml.safe_dump(metadata(arrangement, mix, soundfonts, track_id), fh, sort_keys=True)
        sync_tree(tmp)  # on disk before the rename says "done": a machine that goes down leaves no torn track
        _rename_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own half-written folder, never the user's files
        raise


def _rename_into_place(tmp: Path, final: Path) -> None:
    """Rename; when `final` is already there, another writer finished this very track (a worker of a
    killed render still finishing its task, say): the files are the same, so ours is dropped."""
    try:
        os.rename(tmp, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def sync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (the folder included), deepest first."""
    for directory, _, files in os.walk(folder, topdown=False):
        for name in [*files, "."]:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def stale_temp_folders(scratch: Path) -> list[Path]:
    """Half-written track folders a killed run left behind (only names write_track creates)."""
    return [p for p in scratch.glob("Track?????.*.tmp") if p.is_dir()]
