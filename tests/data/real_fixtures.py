"""Write tiny MAPS and GuitarSet copies in their published layouts (sine tones + annotations)."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

SR = 44100
Note = tuple[float, float, float]  # onset_s, offset_s, midi pitch (GuitarSet pitches are not integers)
SYNTHETIC_PIANOS = ("AkPnBcht", "AkPnBsdf", "AkPnCGdD", "AkPnStgb", "SptkBGAm", "SptkBGCl", "StbgTGd2")
REAL_PIANOS = ("ENSTDkAm", "ENSTDkCl")


def tones(notes: list[Note], seconds: float, amplitude: float = 0.2) -> np.ndarray:
    """Sine tones for the notes: float32 ``(round(seconds * 44100),)``."""
    n = int(round(seconds * SR))
    out = np.zeros(n, dtype=np.float32)
    for on, off, pitch in notes:
        a, b = int(on * SR), min(n, int(off * SR))
        t = np.arange(max(0, b - a)) / SR
        out[a:b] += (amplitude * np.sin(2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) * t)).astype(np.float32)
    return out


def notes_for(name: str, seconds: float, low: int, high: int, count: int = 5) -> list[Note]:
    """``count`` integer-pitch notes over ``seconds``, seeded by ``name`` (stable across runs)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    starts = np.sort(rng.uniform(0.1, seconds - 0.6, count))
    return [(round(float(s), 4), round(float(s + rng.uniform(0.2, 0.5)), 4), float(rng.integers(low, high))) for s in starts]


def maps_piece(root: Path, piano: str, piece: str, seconds: float = 3.0, notes: list[Note] | None = None,
               subset: str = "MUS", crlf: bool = False) -> Path:
    """``<root>/<piano>/MUS/MAPS_MUS-<piece>_<piano>.{wav,txt,mid}``: 44.1 kHz stereo; returns the .wav.

    Other subsets nest as MAPS does: ``ISOL/NO/MAPS_ISOL_NO_F_S0_M23_<piano>.wav`` for piece ``NO_F_S0_M23``.
    """
    if subset == "MUS":
        stem, folder = f"MAPS_MUS-{piece}_{piano}", root / piano / subset
    else:
        stem, folder = f"MAPS_{subset}_{piece}_{piano}", root / piano / subset / re.match(r"[A-Z]+", piece).group(0)
    notes = notes if notes is not None else notes_for(stem, seconds, 48, 84)
    folder.mkdir(parents=True, exist_ok=True)
    mono = tones(notes, seconds)
    sf.write(str(folder / f"{stem}.wav"), np.stack([mono, 0.8 * mono], axis=1), SR, subtype="PCM_16")
    eol = "\r\n" if crlf else "\n"
    lines = ["OnsetTime\tOffsetTime\tMidiPitch"] + [f"{on:.6f}\t{off:.6f}\t{int(p)}" for on, off, p in notes]
    (folder / f"{stem}.txt").write_text(eol.join(lines) + eol)
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes = [pretty_midi.Note(velocity=64, pitch=int(p), start=on, end=off) for on, off, p in notes]
    midi.instruments.append(inst)
    midi.write(str(folder / f"{stem}.mid"))
    return folder / f"{stem}.wav"


def write_maps(root: Path, pieces: dict[str, list[str]], seconds: float = 3.0) -> Path:
    """A MAPS copy: ``{piano: [piece, ...]}`` as MUS pieces; every piano gets the four subset folders."""
    for piano, names in pieces.items():
        for subset in ("ISOL", "RAND", "UCHO", "MUS"):
            (root / piano / subset).mkdir(parents=True, exist_ok=True)
        for piece in names:
            maps_piece(root, piano, piece, seconds)
    return root


def jams_document(notes_by_string: list[list[Note]], seconds: float, dict_of_lists: bool = False) -> dict:
    """A GuitarSet JAMS: six ``note_midi`` annotations (one per string) plus others that are ignored."""
    annotations = []
    for string, notes in enumerate(notes_by_string):
        rows = [{"time": on, "duration": off - on, "value": p, "confidence": None} for on, off, p in notes]
        data = ({k: [r[k] for r in rows] for k in ("time", "duration", "value", "confidence")}
                if dict_of_lists else rows)
        annotations.append({"annotation_metadata": {"data_source": str(string), "version": "1.0"},
                            "namespace": "note_midi", "data": data, "sandbox": {}, "time": 0, "duration": seconds})
        contour = [{"time": on, "duration": 0.0, "value": {"index": 0, "frequency": 440.0 * 2 ** ((p - 69) / 12),
                    "voiced": True}, "confidence": None} for on, _, p in notes]
        annotations.append({"annotation_metadata": {"data_source": str(string)}, "namespace": "pitch_contour",
                            "data": contour, "sandbox": {}, "time": 0, "duration": seconds})
    annotations.append({"annotation_metadata": {}, "namespace": "tempo",
                        "data": [{"time": 0.0, "duration": seconds, "value": 129.0, "confidence": 1.0}],
                        "sandbox": {}, "time": 0, "duration": seconds})
    return {"annotations": annotations, "sandbox": {},
            "file_metadata": {"title": "fixture", "duration": seconds, "jams_version": "0.3.1", "identifiers": {}}}


def guitarset_take(root: Path, take: str, seconds: float = 3.0, notes: list[list[Note]] | None = None,
                   dict_of_lists: bool = False) -> Path:
    """``audio_mono-mic/<take>_mic.wav`` (44.1 kHz mono) and ``annotation/<take>.jams``; returns the .wav.

    Pitches are detuned by a few cents, as GuitarSet's are, so readers must round them.
    """
    if notes is None:
        detune = np.random.default_rng(zlib.crc32(take.encode())).uniform(-0.3, 0.3)
        notes = [[(on, off, p + detune) for on, off, p in notes_for(f"{take}-{s}", seconds, 40 + 5 * s, 52 + 5 * s, 2)]
                 for s in range(6)]
    (root / "audio_mono-mic").mkdir(parents=True, exist_ok=True)
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    wav = root / "audio_mono-mic" / f"{take}_mic.wav"
    sf.write(str(wav), tones([n for string in notes for n in string], seconds, 0.1), SR, subtype="PCM_16")
    doc = jams_document(notes, seconds, dict_of_lists)
    (root / "annotation" / f"{take}.jams").write_text(json.dumps(doc, indent=1))
    return wav


def write_guitarset(root: Path, takes: list[str], seconds: float = 3.0) -> Path:
    """A GuitarSet copy holding ``takes`` (ids such as ``00_BN1-129-Eb_comp``)."""
    for take in takes:
        guitarset_take(root, take, seconds)
    return root


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its bytes, as an interrupted download does."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
