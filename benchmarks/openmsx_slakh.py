"""Render human-composed GM MIDI files into a Slakh2100-layout test set that mstt did not generate.

    apt-get install openttd-openmsx fluid-soundfont-gm      # Debian: 30 songs + FluidR3_GM.sf2
    .venv/bin/python benchmarks/openmsx_slakh.py --out /tmp/openmsx_slakh
    .venv/bin/mstt eval runs/demo/checkpoints/best.pt --data slakh:/tmp/openmsx_slakh

Slakh2100 cannot be downloaded here, so this is the out-of-distribution check of issues 4 and 5:
other music (OpenMSX, the OpenTTD soundtrack: songs by several composers, not mstt's
composer), another soundfont (FluidR3 GM, not TimGM6mb), 44.1 kHz FLAC, and every MIDI track
kept as its own stem, so tracks hold stems outside the recipe's classes (organ, brass, synths)
and several stems of one class. It is written without mstt's synth code: ``test/TrackNNNNN/``
with ``mix.flac``, ``stems/Sxx.flac``, ``MIDI/Sxx.mid``, ``all_src.mid`` and ``metadata.yaml``
as Slakh2100-redux publishes them; the mixture is the sum of the stems (one gain for all).
Track ids start at 01876, Slakh2100's first test id, so the layout reads as a partial ``orig``.

``--midi-dir`` renders any other folder of GM MIDI files the same way. Slakh2100 itself was
rendered from the Lakh MIDI dataset (pop and rock songs transcribed by hobbyists); the closest
such songs that can be fetched here are the 12 multitrack test files that miditok ships in its
source distribution on PyPI (Lakh-style arrangements of "Mr. Blue Sky", "Aicha", "Funkytown"
and others, two of them named by an MD5 as Lakh MIDI files are), rendered whole (``--seconds 0``)::

    pip download --no-deps --no-binary :all: miditok==3.1.0 -d /tmp/mididl
    tar xzf /tmp/mididl/miditok-3.1.0.tar.gz -C /tmp/mididl miditok-3.1.0/tests/MIDIs_multitrack
    .venv/bin/python benchmarks/openmsx_slakh.py --midi-dir /tmp/mididl/miditok-3.1.0/tests/MIDIs_multitrack \
        --seconds 0 --out /tmp/pop_slakh
"""

from __future__ import annotations

import argparse
import copy
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import yaml

MIDI_DIR = Path("/usr/share/games/openttd/baseset/openmsx")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FIRST_TEST_ID = 1876  # Slakh2100-orig: Track01876-Track02100 are the test split
TAIL_SECONDS = 1.0  # release tails rendered after the last note


def crop(midi: pretty_midi.PrettyMIDI, seconds: float | None) -> pretty_midi.PrettyMIDI:
    """A copy holding the notes that start before ``seconds``, their ends clipped there."""
    midi = copy.deepcopy(midi)
    if seconds is None:
        return midi
    for inst in midi.instruments:
        inst.notes = [n for n in inst.notes if n.start < seconds]
        for n in inst.notes:
            n.end = min(n.end, seconds)
        inst.control_changes = [c for c in inst.control_changes if c.time < seconds]
        inst.pitch_bends = [b for b in inst.pitch_bends if b.time < seconds]
    return midi


def stem_midi(midi: pretty_midi.PrettyMIDI, inst: pretty_midi.Instrument) -> pretty_midi.PrettyMIDI:
    """A one-instrument MIDI file on ``midi``'s tempo map, as Slakh's ``MIDI/Sxx.mid``."""
    single = copy.deepcopy(midi)
    single.instruments = [copy.deepcopy(inst)]
    return single


def render(inst: pretty_midi.Instrument, sample_rate: int, samples: int, soundfont: Path) -> np.ndarray:
    """One instrument through FluidSynth, mono float64, padded or cut to ``samples``."""
    audio = inst.fluidsynth(fs=sample_rate, synthesizer=str(soundfont)) if inst.notes else np.zeros(0)
    out = np.zeros(samples)
    out[: min(samples, len(audio))] = audio[:samples]
    return out


def write_track(job: tuple[Path, Path, str, int, float | None, Path]) -> str:
    """Render one MIDI file into ``out/test/TrackNNNNN``; returns a one-line summary."""
    midi_path, out, track, sample_rate, seconds, soundfont = job
    midi = crop(pretty_midi.PrettyMIDI(str(midi_path)), seconds)
    midi.instruments = [i for i in midi.instruments if i.notes]
    end = max(n.end for i in midi.instruments for n in i.notes)
    samples = int(round((end + TAIL_SECONDS) * sample_rate))
    stems = [render(inst, sample_rate, samples, soundfont) for inst in midi.instruments]
    mix = np.sum(stems, axis=0)
    gain = 0.9 / max(np.abs(mix).max(), 1e-9)  # one gain for all: the mixture stays the stems' sum
    folder = out / "test" / track
    partial = folder.with_name(folder.name + ".partial")
    (partial / "stems").mkdir(parents=True, exist_ok=True)
    (partial / "MIDI").mkdir(exist_ok=True)
    meta_stems = {}
    for k, (inst, audio) in enumerate(zip(midi.instruments, stems)):
        stem_id = f"S{k:02d}"
        sf.write(partial / "stems" / f"{stem_id}.flac", audio * gain, sample_rate, subtype="PCM_16")
        stem_midi(midi, inst).write(str(partial / "MIDI" / f"{stem_id}.mid"))
        meta_stems[stem_id] = {
            "audio_rendered": True,
            "inst_class": "Drums" if inst.is_drum else pretty_midi.program_to_instrument_class(inst.program),
            "integrated_loudness": None,
            "is_drum": bool(inst.is_drum),
            "midi_program_name": "Drums" if inst.is_drum else pretty_midi.program_to_instrument_name(inst.program),
            "midi_saved": True,
            "plugin_name": soundfont.name,
            "program_num": int(inst.program),
        }
    sf.write(partial / "mix.flac", mix * gain, sample_rate, subtype="PCM_16")
    midi.write(str(partial / "all_src.mid"))
    meta = {
        "UUID": uuid.uuid5(uuid.NAMESPACE_URL, midi_path.name).hex,
        "audio_dir": "stems",
        "lmd_midi_dir": f"{midi_path.parent.name}/{midi_path.name}",
        "midi_dir": "MIDI",
        "normalization_factor": -13.0,
        "normalized": True,
        "overall_gain": float(gain),
        "stems": meta_stems,
    }
    (partial / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=True))
    partial.rename(folder)
    return f"{track}: {midi_path.name}, {samples / sample_rate:.0f} s, {len(stems)} stems"


def main(argv: list[str] | None = None) -> int:
    """Render every ``*.mid`` of ``--midi-dir`` (sorted, at most ``--songs``) into ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="root of the Slakh-layout set (test/ is written)")
    p.add_argument("--midi-dir", type=Path, default=MIDI_DIR, help=f"folder of .mid files (default {MIDI_DIR})")
    p.add_argument("--soundfont", type=Path, default=SOUNDFONT, help=f"a .sf2 file (default {SOUNDFONT})")
    p.add_argument("--sample-rate", type=int, default=44100)
    p.add_argument("--seconds", type=float, default=60.0, help="keep each song's first N seconds (0: whole songs)")
    p.add_argument("--songs", type=int, default=None, help="at most N songs (default all)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    for path, what, fix in (
        (args.midi_dir, "MIDI folder", "apt-get install openttd-openmsx or pass --midi-dir"),
        (args.soundfont, "soundfont", "apt-get install fluid-soundfont-gm or pass --soundfont"),
    ):
        if not path.exists():
            print(f"error: {path}: {what} not found; {fix}", file=sys.stderr)
            return 2
    songs = sorted(args.midi_dir.glob("*.mid"))[: args.songs]
    if not songs:
        print(f"error: {args.midi_dir}: no .mid files", file=sys.stderr)
        return 2
    seconds = args.seconds or None
    jobs = []
    for k, song in enumerate(songs):
        track = f"Track{FIRST_TEST_ID + k:05d}"
        if (args.out / "test" / track).is_dir():
            continue  # finished by an earlier call
        jobs.append((song, args.out, track, args.sample_rate, seconds, args.soundfont))
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for line in pool.map(write_track, jobs):
            print(line, flush=True)
    print(f"{args.out}: {len(songs)} tracks in test/ ({len(songs) - len(jobs)} there already)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
