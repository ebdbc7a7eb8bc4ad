"""Score ``mstt separate``'s stems against a Slakh-layout track's own stems, at the files' rate.

    .venv/bin/mstt separate best.pt /tmp/openmsx_slakh/test/Track01904/mix.flac --out /tmp/sep
    .venv/bin/python benchmarks/score_stems.py /tmp/openmsx_slakh/test/Track01904 /tmp/sep/mix

For each source the reference is the sum of the track's rendered stems of that class (programs
as mstt's adapters map them); the table gives SI-SDR of the estimated stem and of the mixture
against it, and their difference (SI-SDRi: > 0 means the stem beats the mixture). Sources the
track lacks are left out (SI-SDR is undefined for a silent reference).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml
from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio as si_sdr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mstt.data.classes import DEFAULT_CLASSES, class_of  # noqa: E402


def references(track: Path, length: int) -> tuple[dict[str, np.ndarray], int]:
    """Per-class sums of the track's rendered stems (trimmed or padded to ``length``), and their rate."""
    meta = yaml.safe_load((track / "metadata.yaml").read_text())
    audio_dir = track / str(meta.get("audio_dir") or "stems")
    sums: dict[str, np.ndarray] = {}
    rate = 0
    for stem_id, stem in sorted(meta["stems"].items()):
        if not stem.get("audio_rendered"):
            continue
        name = class_of(int(stem["program_num"]), bool(stem["is_drum"]), DEFAULT_CLASSES)
        if name is None:
            continue
        audio, rate = sf.read(str(audio_dir / f"{stem_id}.flac"), dtype="float64", always_2d=True)
        audio = audio.mean(1)[:length]
        sums.setdefault(name, np.zeros(length))[: len(audio)] += audio
    return sums, rate


def main(argv: list[str] | None = None) -> int:
    """Print the SI-SDR table; exit 1 when a stem does not beat the mixture."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("track", type=Path, help="a Slakh track folder (metadata.yaml, stems/, mix.flac)")
    p.add_argument("stems", type=Path, help="the folder mstt separate wrote for the track's mixture")
    args = p.parse_args(argv)
    mix, mix_rate = sf.read(str(args.track / "mix.flac"), dtype="float64", always_2d=True)
    mix = mix.mean(1)
    refs, ref_rate = references(args.track, len(mix))
    if ref_rate != mix_rate:
        print(f"error: {args.track}: stems at {ref_rate} Hz, mixture at {mix_rate} Hz", file=sys.stderr)
        return 2
    worse = 0
    print(f"{'source':8} {'rate':>6} {'SI-SDR stem':>12} {'SI-SDR mix':>11} {'SI-SDRi':>8}")
    for name, ref in refs.items():
        path = args.stems / f"{name}.wav"
        if not path.exists():
            print(f"{name:8} no {path.name} in {args.stems}")
            worse += 1
            continue
        est, est_rate = sf.read(str(path), dtype="float64", always_2d=True)
        est = est.mean(1)
        n = min(len(est), len(ref))
        r = torch.from_numpy(ref[:n])
        stem = float(si_sdr(torch.from_numpy(est[:n]), r))
        base = float(si_sdr(torch.from_numpy(mix[:n]), r))
        worse += stem <= base
        print(f"{name:8} {est_rate:>6} {stem:>12.2f} {base:>11.2f} {stem - base:>8.2f}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
