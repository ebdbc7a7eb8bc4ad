"""Score ``mstt separate``'s stems against a Slakh-layout track's own stems, at the files' rate.

    .venv/bin/mstt separate best.pt /tmp/openmsx_slakh/test/Track01904/mix.flac --out /tmp/sep
    .venv/bin/python benchmarks/score_stems.py /tmp/openmsx_slakh/test/Track01904 /tmp/sep/mix

    .venv/bin/mstt separate best.pt /tmp/openmsx_slakh/test/*/mix.flac --out /tmp/sep   # TrackXXXXX-mix/
    .venv/bin/python benchmarks/score_stems.py --set /tmp/openmsx_slakh/test /tmp/sep

For each source the reference is the sum of the track's rendered stems of that class (programs
as mstt's adapters map them); the table gives SI-SDR of the estimated stem and of the mixture
against it, and their difference (SI-SDRi: > 0 means the stem beats the mixture). Sources the
track lacks are left out (SI-SDR is undefined for a silent reference). A model trained with the
catch-all source writes other.wav, scored against the sum of the stems of no class.

``--where`` adds where each stem's content came from: the least-squares weights of the stem
over the class references and ``other`` (the sum of the stems of no class), e.g.
"drums: guitar 0.38" means the drums stem holds 38% of the guitar's amplitude.
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

from mstt.data.classes import DEFAULT_CLASSES, OTHER, class_of  # noqa: E402
from mstt.errors import MsttError  # noqa: E402


def references(track: Path, length: int) -> tuple[dict[str, np.ndarray], int]:
    """Per-class sums of the track's rendered stems (trimmed or padded to ``length``), and their rate.

    Stems of no class are summed into ``other``: the reference of a model's other.wav.
    """
    meta = yaml.safe_load((track / "metadata.yaml").read_text())
    audio_dir = track / str(meta.get("audio_dir") or "stems")
    sums: dict[str, np.ndarray] = {}
    rate = 0
    for stem_id, stem in sorted(meta["stems"].items()):
        if not stem.get("audio_rendered"):
            continue
        name = class_of(int(stem["program_num"]), bool(stem["is_drum"]), DEFAULT_CLASSES) or OTHER
        path = audio_dir / f"{stem_id}.flac"
        if not path.is_file():
            raise MsttError(f"{path}: missing, but metadata.yaml marks {stem_id} as rendered; render the track again")
        audio, stem_rate = sf.read(str(path), dtype="float64", always_2d=True)
        if rate and stem_rate != rate:
            raise MsttError(f"{path}: {stem_rate} Hz where the track's other stems are at {rate} Hz; render the track again")
        rate = stem_rate
        audio = audio.mean(1)[:length]
        sums.setdefault(name, np.zeros(length))[: len(audio)] += audio
    return sums, rate


def score_track(track: Path, stems: Path) -> tuple[dict[str, tuple[float, float] | None], dict[str, np.ndarray],
                                                   dict[str, np.ndarray]]:
    """Per source present in ``track``: (SI-SDR of the stem file in ``stems``, of the mixture), None when no stem file."""
    estimates = {path.stem: sf.read(str(path), dtype="float64", always_2d=True)[0].mean(1) for path in sorted(stems.glob("*.wav"))}
    return score_estimates(track, estimates)


def score_estimates(track: Path, estimates: dict[str, np.ndarray]) -> tuple[dict[str, tuple[float, float] | None],
                                                                          dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per source present in ``track``: (SI-SDR of its estimate, of the mixture), None when there is no estimate.

    ``estimates`` maps source names to mono stems at the mixture's rate (``mstt.load(...).separate``'s
    stems, or the files ``mstt separate`` wrote). Returns the scores, the estimates scored, the references.
    """
    mix, mix_rate = sf.read(str(track / "mix.flac"), dtype="float64", always_2d=True)
    mix = mix.mean(1)
    refs, ref_rate = references(track, len(mix))
    if refs and ref_rate != mix_rate:
        raise MsttError(f"{track}: stems at {ref_rate} Hz, mixture at {mix_rate} Hz; render the track again at one rate")
    scores: dict[str, tuple[float, float] | None] = {}
    scored: dict[str, np.ndarray] = {}
    for name, ref in refs.items():
        if name not in estimates and name == OTHER:
            continue  # a model without the catch-all source: the unclassed stems are its mixture's rest
        if name not in estimates:
            scores[name] = None
            continue
        est = np.asarray(estimates[name], dtype=np.float64)
        scored[name] = est
        n = min(len(est), len(ref))
        r = torch.from_numpy(ref[:n])
        scores[name] = (float(si_sdr(torch.from_numpy(est[:n]), r)), float(si_sdr(torch.from_numpy(mix[:n]), r)))
    return scores, scored, refs


def summarize(gains: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    """Per source, from its SI-SDRi over tracks: tracks, how many beat the mixture (> 0 dB), median and mean."""
    out: dict[str, dict[str, float | int]] = {}
    for name, values in gains.items():
        v = np.array(values, dtype=np.float64)
        out[name] = {"tracks": len(v), "beat_mix": int((v > 0).sum()), "median_si_sdri": float(np.median(v)),
                     "mean_si_sdri": float(v.mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the SI-SDR table; exit 1 when a stem does not beat the mixture, 2 (one line) for a broken track."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("track", type=Path, help="a Slakh track folder (metadata.yaml, stems/, mix.flac), or with "
                                           "--set a split folder of them")
    p.add_argument("stems", type=Path, help="the folder mstt separate wrote for the track's mixture (with --set: "
                                           "its --out, holding TrackXXXXX-mix/ per track)")
    p.add_argument("--where", action="store_true", help="also print each stem's weights over the references")
    p.add_argument("--set", action="store_true", help="score every track of a split folder; one row per source")
    args = p.parse_args(argv)
    try:
        if args.set:
            return score_set(args.track, args.stems)
        scores, estimates, refs = score_track(args.track, args.stems)
    except MsttError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    worse = 0
    print(f"{'source':8} {'SI-SDR stem':>12} {'SI-SDR mix':>11} {'SI-SDRi':>8}")
    for name, pair in scores.items():
        if pair is None:
            print(f"{name:8} no {name}.wav in {args.stems}")
            worse += 1
            continue
        stem, base = pair
        worse += stem <= base
        print(f"{name:8} {stem:>12.2f} {base:>11.2f} {stem - base:>8.2f}")
    if args.where:
        print_where(estimates, refs)
    return 1 if worse else 0


def score_set(split: Path, separated: Path) -> int:
    """Per source over every track of ``split``: in how many the stem beats the mixture, median SI-SDRi."""
    gains: dict[str, list[float]] = {}
    missing = broken = 0
    for track in sorted(t for t in split.iterdir() if (t / "metadata.yaml").is_file()):
        stems = separated / f"{track.name}-mix"
        if not stems.is_dir():
            missing += 1
            continue
        try:
            scores = score_track(track, stems)[0]
        except MsttError as exc:  # one broken track: say so, and the rest still count
            print(f"skipped: {exc}")
            broken += 1
            continue
        for name, pair in scores.items():
            if pair is not None:
                gains.setdefault(name, []).append(pair[0] - pair[1])
    print(f"{'source':8} {'tracks':>6} {'beat mix':>8} {'median SI-SDRi':>15} {'mean SI-SDRi':>13}")
    for name, row in summarize(gains).items():
        print(f"{name:8} {row['tracks']:>6} {row['beat_mix']:>8} {row['median_si_sdri']:>15.2f} {row['mean_si_sdri']:>13.2f}")
    if missing:
        print(f"{missing} tracks have no folder in {separated} (run mstt separate on their mix.flac)")
    if broken:
        print(f"{broken} tracks skipped as broken (the reasons above)")
    return 0


def print_where(estimates: dict[str, np.ndarray], refs: dict[str, np.ndarray]) -> None:
    """Each stem as a least-squares combination of the references (``other`` among them)."""
    names = list(refs)
    basis = np.stack(list(refs.values()), axis=1)
    print("weights of each stem over the references (1.0 = all of that reference, 0 = none):")
    print(f"{'stem':8} " + " ".join(f"{n:>8}" for n in names))
    for name, est in estimates.items():
        n = min(len(est), len(basis))
        weights, *_ = np.linalg.lstsq(basis[:n], est[:n], rcond=None)
        print(f"{name:8} " + " ".join(f"{w:>8.2f}" for w in weights))


if __name__ == "__main__":
    sys.exit(main())
