"""Write small datasets in the real published layouts (Slakh2100 orig/split2/redux, babyslakh)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import yaml

Note = tuple[float, float, int, int]  # onset_s, offset_s, pitch, velocity


@dataclass
class StemSpec:
    """One stem of a fixture track: its GM program, notes and metadata flags."""

    program: int
    notes: list[Note] = field(default_factory=list)
    is_drum: bool = False
    audio_rendered: bool = True
    midi_saved: bool = True
    amplitude: float = 0.2
    seconds: float | None = None  # audio length; None: the track's


def render(notes: list[Note], seconds: float, sample_rate: int, is_drum: bool, amplitude: float) -> np.ndarray:
    """Sine tones (drums: decaying noise bursts) for the notes: float32 ``(samples,)``."""
    n = int(round(seconds * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    rng = np.random.default_rng(len(notes))
    for on, off, pitch, vel in notes:
        a, b = int(on * sample_rate), min(n, max(int(off * sample_rate), int(on * sample_rate) + 1))
        if a >= n:
            continue
        t = np.arange(b - a) / sample_rate
        gain = amplitude * vel / 127
        if is_drum:
            tone = rng.standard_normal(b - a) * np.exp(-t * 30)
        else:
            tone = np.sin(2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) * t)
        out[a:b] += (gain * tone).astype(np.float32)
    return out


def random_notes(rng: np.random.Generator, seconds: float, low: int, high: int, count: int = 6) -> list[Note]:
    """``count`` notes spread over ``seconds``, pitches in [low, high), all velocity >= 40."""
    starts = np.sort(rng.uniform(0, seconds - 0.3, count))
    return [(float(s), float(s + rng.uniform(0.1, 0.4)), int(rng.integers(low, high)), int(rng.integers(40, 120))) for s in starts]


def full_band(rng: np.random.Generator, seconds: float) -> list[StemSpec]:
    """Piano, guitar (twice, one unrendered), bass, drums, strings and an organ (no class)."""
    return [
        StemSpec(0, random_notes(rng, seconds, 60, 72)),
        StemSpec(25, random_notes(rng, seconds, 52, 64)),
        StemSpec(27, random_notes(rng, seconds, 55, 67), audio_rendered=False, amplitude=0.5),
        StemSpec(33, random_notes(rng, seconds, 36, 48)),
        StemSpec(128, random_notes(rng, seconds, 36, 50), is_drum=True),
        StemSpec(48, random_notes(rng, seconds, 60, 80)),
        StemSpec(16, random_notes(rng, seconds, 60, 72)),
    ]


def write_track(
    track_dir: Path,
    stems: list[StemSpec],
    sample_rate: int = 44100,
    seconds: float = 3.0,
    audio_format: str = "flac",
) -> Path:
    """One Slakh track folder: mix, stems/SXX, MIDI/SXX.mid, all_src.mid, metadata.yaml."""
    (track_dir / "stems").mkdir(parents=True, exist_ok=True)
    (track_dir / "MIDI").mkdir(exist_ok=True)
    mix = np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)
    all_src = pretty_midi.PrettyMIDI()
    meta_stems = {}
    for i, stem in enumerate(stems):
        sid = f"S{i:02d}"
        inst = pretty_midi.Instrument(program=0 if stem.is_drum else stem.program, is_drum=stem.is_drum)
        inst.notes = [pretty_midi.Note(velocity=v, pitch=p, start=a, end=b) for a, b, p, v in stem.notes]
        if stem.midi_saved:
            midi = pretty_midi.PrettyMIDI()
            midi.instruments.append(inst)
            midi.write(str(track_dir / "MIDI" / f"{sid}.mid"))
        all_src.instruments.append(inst)
        # Real Slakh has no audio for unrendered stems; writing one checks it is ignored.
        audio = render(stem.notes, stem.seconds or seconds, sample_rate, stem.is_drum, stem.amplitude)
        sf.write(str(track_dir / "stems" / f"{sid}.{audio_format}"), audio, sample_rate)
        if stem.audio_rendered:
            mix[: len(audio)] += audio[: len(mix)]
        meta_stems[sid] = {
            "audio_rendered": stem.audio_rendered,
            "inst_class": "Drums" if stem.is_drum else "Other",
            "integrated_loudness": -20.0,
            "is_drum": stem.is_drum,
            "midi_program_name": "Drums" if stem.is_drum else pretty_midi.program_to_instrument_name(stem.program),
            "midi_saved": stem.midi_saved,
            "plugin_name": "fixture.nkm",
            "program_num": stem.program,
        }
    all_src.write(str(track_dir / "all_src.mid"))
    sf.write(str(track_dir / f"mix.{audio_format}"), mix, sample_rate)
    meta = {
        "UUID": f"fixture-{track_dir.name}",
        "audio_dir": "stems",
        "lmd_midi_dir": "lmd_matched/fixture.mid",
        "midi_dir": "MIDI",
        "normalization_factor": -13.0,
        "normalized": True,
        "overall_gain": 0.5,
        "stems": meta_stems,
        "target_peak": -1.0,
    }
    (track_dir / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=True))
    return track_dir


def write_slakh(
    root: Path,
    tracks: dict[str, list[str]],
    seed: int = 0,
    sample_rate: int = 44100,
    seconds: float = 3.0,
    audio_format: str = "flac",
) -> Path:
    """Full-band tracks at ``root/<split>/<name>`` ({"train": ["Track00001"], ...}); split ""
    writes the track directly under root (babyslakh_16k's flat layout)."""
    rng = np.random.default_rng(seed)
    for split, names in tracks.items():
        for name in names:
            write_track(root / split / name, full_band(rng, seconds), sample_rate, seconds, audio_format)
    return root


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its bytes, as an interrupted download does."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def break_midi(path: Path) -> None:
    """Overwrite a MIDI file with bytes that are not MIDI."""
    path.write_bytes(b"MThd\x00\x00\x00\x06garbage-not-midi")


def track_dirs_only(root: Path, layout: dict[str, list[str]]) -> None:
    """Empty Track folders (enough for layout detection) at ``root/<split>/<name>``."""
    for split, names in layout.items():
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
