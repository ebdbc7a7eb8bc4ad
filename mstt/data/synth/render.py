"""FluidSynth rendering of one stem, loudness normalisation and a clip-safe mix that equals the sum of its stems."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from mstt.errors import MsttError

NORMALIZATION_DB = -13.0  # per-stem loudness target, as Slakh's normalization_factor
TARGET_PEAK_DB = -1.0  # mixture (and every stem) peak ceiling in dBFS
_BLOCK_S = 0.4  # gating block of the loudness measure, as BS.1770

_write_float = None


def default_soundfont() -> Path:
    """pretty_midi's bundled General-MIDI soundfont (TimGM6mb.sf2)."""
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def _writer():
    """fluid_synth_write_float from the library pyfluidsynth loaded (pyfluidsynth only wraps the int16 writer)."""
    global _write_float
    if _write_float is None:
        import fluidsynth

        fn = fluidsynth._fl.fluid_synth_write_float
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                       ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        fn.restype = ctypes.c_int
        _write_float = fn
    return _write_float


def _events(inst: pretty_midi.Instrument, sample_rate: int) -> list[tuple[int, int, int, int, int]]:
    """(sample, order, kind, a, b) events; note-offs sort before note-ons at the same sample (re-strikes)."""
    events = []
    for note in inst.notes:
        events.append((int(round(note.start * sample_rate)), 1, 1, note.pitch, note.velocity))
        events.append((int(round(note.end * sample_rate)), 0, 0, note.pitch, 0))
    for cc in inst.control_changes:
        events.append((int(round(cc.time * sample_rate)), 1, 2, cc.number, cc.value))
    for bend in inst.pitch_bends:
        events.append((int(round(bend.time * sample_rate)), 1, 3, bend.pitch, 0))
    events.sort()
    return events


def render_stem(inst: pretty_midi.Instrument, sample_rate: int, n_samples: int,
                soundfont: str | os.PathLike | None = None) -> np.ndarray:
    """Render one instrument to mono float32 audio of shape (n_samples,) with a fresh synthesizer."""
    import fluidsynth

    write = _writer()
    # A fresh synth per stem: a reused one (even after system_reset) renders differently, so the audio
    # would depend on which worker rendered what. Dynamic sample loading reads only the one preset's
    # samples, halving the set-up cost that a fresh synth brings. Chorus is off (cost, little realism);
    # reverb stays on (Slakh's stems carry effects too).
    synth = fluidsynth.Synth(gain=0.5, samplerate=float(sample_rate),
                             **{"synth.chorus.active": 0, "synth.reverb.active": 1, "synth.cpu-cores": 1,
                                "synth.dynamic-sample-loading": 1})
    try:
        sfid = synth.sfload(str(soundfont or default_soundfont()))
        if sfid < 0:
            raise MsttError(f"--soundfont {soundfont}: FluidSynth could not load it; pass a valid .sf2 file")
        channel = 9 if inst.is_drum else 0
        if inst.is_drum:
            # A kit this soundfont lacks falls back to the standard kit; asking first keeps FluidSynth
            # from printing an error line per stem.
            kit = inst.program if synth.sfpreset_name(sfid, 128, inst.program) is not None else 0
            synth.program_select(channel, sfid, 128, kit)
        else:
            synth.program_select(channel, sfid, 0, inst.program)
        left = np.zeros(n_samples, np.float32)
        right = np.zeros(n_samples, np.float32)
        pos = 0

        def advance(upto: int) -> None:
            nonlocal pos
            upto = min(upto, n_samples)
            if upto > pos:  # write straight into the output arrays at offset pos
                write(synth.synth, upto - pos, left.ctypes.data + 4 * pos, 0, 1,
                      right.ctypes.data + 4 * pos, 0, 1)
                pos = upto

        for sample, _, kind, a, b in _events(inst, sample_rate):
            if sample >= n_samples:
                break
            advance(sample)
            if kind == 1:
                synth.noteon(channel, a, b)
            elif kind == 0:
                synth.noteoff(channel, a)
            elif kind == 2:
                synth.cc(channel, a, b)
            else:
                synth.pitch_bend(channel, a)
        advance(n_samples)
    finally:
        synth.delete()
    return 0.5 * (left + right)


def loudness_db(audio: np.ndarray, sample_rate: int) -> float:
    """Gated mean-square loudness in dB (BS.1770 gating without K-weighting); -100 for silence."""
    block = max(1, int(_BLOCK_S * sample_rate))
    hop = max(1, block // 4)
    x = audio.astype(np.float64)
    if len(x) < block:
        x = np.pad(x, (0, block - len(x)))
    starts = np.arange(0, len(x) - block + 1, hop)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    power = (csum[starts + block] - csum[starts]) / block
    power = power[power > 10 ** (-70 / 10)]  # absolute gate
    if power.size == 0:
        return -100.0
    power = power[power > power.mean() * 10 ** (-10 / 10)]  # relative gate: 10 dB under the mean
    return float(10 * np.log10(power.mean()))


@dataclass
class Mix:
    """Stems and mixture as written: int16 PCM, mix == stems.sum(0) exactly."""

    stems: np.ndarray  # (n_stems, n_samples) int16
    mix: np.ndarray  # (n_samples,) int16
    loudness: list[float]  # measured loudness of each raw render, dB
    overall_gain: float  # the one gain applied to every normalised stem


def mix_stems(raw: list[np.ndarray], sample_rate: int, target_db: float = NORMALIZATION_DB,
              peak_db: float = TARGET_PEAK_DB) -> Mix:
    """Normalise each stem to target_db, scale all by one gain so nothing peaks above peak_db, quantise."""
    loudness = [loudness_db(x, sample_rate) for x in raw]
    norm = np.stack([x * 10 ** ((target_db - lu) / 20) if lu > -100 else x for x, lu in zip(raw, loudness)])
    summed = norm.sum(axis=0)
    peak = max(float(np.abs(summed).max()), float(np.abs(norm).max()), 1e-9)
    gain = 10 ** (peak_db / 20) / peak
    # Quantise stems first and sum the integers, so the written mix is exactly the sum of written stems;
    # the peak ceiling keeps the sum inside int16 (rounding adds at most n_stems/2 LSB).
    stems = np.round(norm * gain * 32767.0).astype(np.int32)
    mix = stems.sum(axis=0)
    assert np.abs(mix).max() <= 32767
    return Mix(stems.astype(np.int16), mix.astype(np.int16), loudness, float(gain))
