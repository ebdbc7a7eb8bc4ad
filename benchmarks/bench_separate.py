"""Speed and memory of ``mstt separate``: real-time factor, and peak RSS flat with duration.

    .venv/bin/python benchmarks/bench_separate.py [--minutes 1 3 9] [--threads 1] [--device cpu]
    .venv/bin/pytest benchmarks/bench_separate.py      # short inputs, pytest-benchmark table

The script separates synthetic 44.1 kHz stereo WAV recordings with randomly initialised models
(speed does not depend on the weights) of two sizes: ``paper`` = recipes/cerberus_set4.yaml
(4 x 300 BLSTM, five sources, DC + MI + TR heads) and ``quick`` = the same with recipes/quick.yaml
(2 x 128). Each run is a fresh subprocess doing what the CLI does (decode, downmix, resample,
chunks, write stems + MIDI + piano roll); its peak RSS comes from ``os.wait4`` on that child
alone. RTF = separation seconds / audio seconds (model loading is reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RATE = 44100
SIZES = {"paper": [], "quick": ["recipes/quick.yaml"]}


def make_checkpoint(path: Path, size: str, overrides: tuple[str, ...] = ()) -> Path:
    """A randomly initialised cerberus_set4 model of ``size`` saved in the checkpoint format."""
    import torch
    from omegaconf import OmegaConf

    import mstt
    from mstt.nn.build import build_model
    from mstt.plugins import get_registry
    from mstt.recipe import load_recipe
    from mstt.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, save_checkpoint

    config = load_recipe([ROOT / "recipes/cerberus_set4.yaml", *[ROOT / f for f in SIZES[size]]], list(overrides))
    torch.manual_seed(0)
    model = build_model(config)
    save_checkpoint({
        "format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "mstt_version": mstt.__version__,
        "plugins": dict(get_registry().plugin_versions), "recipe": OmegaConf.to_container(config, resolve=True),
        "model": model.state_dict(),
    }, path)
    return path


def make_recording(path: Path, seconds: float, rate: int = RATE) -> Path:
    """Stereo chords with a moving envelope, written block by block (the writer's memory stays small)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, 2, "PCM_16") as f:
        for start in range(0, int(seconds * rate), rate):
            n = min(rate, int(seconds * rate) - start)
            t = (start + np.arange(n)) / rate
            chord = sum(np.sin(2 * np.pi * f0 * t) for f0 in rng.choice([110, 147, 196, 262, 330, 392, 523], 3))
            noise = 0.02 * rng.standard_normal(n)
            mono = 0.2 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t)) + noise
            f.write(np.stack([mono, 0.8 * mono], axis=1))
    return path


def child(checkpoint: str, audio: str, out: str, threads: int, device: str) -> None:
    """Load and separate like ``mstt separate``; print the timings as one JSON line."""
    import torch

    torch.set_num_threads(threads)
    from mstt.commands.separate import add_parser, separate_file
    from mstt.inference import load

    start = time.perf_counter()
    separator = load(checkpoint, device)
    loaded = time.perf_counter()
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["separate", checkpoint, audio, "--out", out, "--quiet"])
    separate_file(separator, Path(audio), Path(out) / Path(audio).stem, args, {"stems", "midi", "png"})
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - start, "separate_s": done - loaded}))


def measure(checkpoint: Path, audio: Path, out: Path, threads: int, device: str) -> dict:
    """Run one separation in a fresh process -> timings and that process's peak RSS in MB."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(checkpoint), str(audio), str(out), str(threads), device],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the maximum over all children
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed: {stderr.strip()[-800:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def main() -> None:
    """Print RTF (paper and quick size, 3 minutes) and peak RSS per duration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 3.0, 9.0])
    parser.add_argument("--rtf-minutes", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = [(size, args.rtf_minutes) for size in args.sizes]
        runs += [("paper" if "paper" in args.sizes else args.sizes[0], m) for m in args.minutes if m != args.rtf_minutes]
        checkpoints = {size: make_checkpoint(tmp / f"{size}.pt", size) for size in args.sizes}
        print(f"device {args.device}, torch threads {args.threads}, load average {os.getloadavg()[0]:.1f}, "
              f"{os.cpu_count()} cores; 44.1 kHz stereo WAV in, stems + MIDI + piano roll out")
        print(f"{'model':<6} {'minutes':>7} {'load s':>7} {'separate s':>10} {'RTF':>6} {'peak RSS MB':>11}")
        for size, minutes in sorted(runs, key=lambda r: (r[0], r[1])):
            audio = tmp / f"rec{minutes:g}.wav"
            if not audio.exists():
                make_recording(audio, minutes * 60)
            r = measure(checkpoints[size], audio, tmp / "out", args.threads, args.device)
            rtf = r["separate_s"] / (minutes * 60)
            print(f"{size:<6} {minutes:>7g} {r['load_s']:>7.2f} {r['separate_s']:>10.2f} {rtf:>6.3f} {r['peak_rss_mb']:>11.0f}",
                  flush=True)


# ---------------------------------------------------------------- pytest-benchmark (short inputs)



def _separator(tmp_path: Path, size: str):
    from mstt.inference import load

    return load(make_checkpoint(tmp_path / f"{size}.pt", size), "cpu")


def test_separate_quick_20s(benchmark, tmp_path) -> None:
    """Quick-size model, 20 s of 44.1 kHz audio (two chunks); extra_info holds the RTF."""
    separator = _separator(tmp_path, "quick")
    x = np.sin(2 * np.pi * 220 * np.arange(20 * RATE) / RATE).astype(np.float32) * 0.3
    result = benchmark.pedantic(separator.separate, args=(x, RATE), rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["rtf"] = benchmark.stats.stats.mean / 20
    assert len(result.stems) == 5 and all(len(s) == len(x) for s in result.stems.values())


def test_separate_paper_10s(benchmark, tmp_path) -> None:
    """Paper-size model, one 10 s chunk at the model's rate; extra_info holds the RTF."""
    separator = _separator(tmp_path, "paper")
    x = np.sin(2 * np.pi * 220 * np.arange(10 * 16000) / 16000).astype(np.float32) * 0.3
    result = benchmark.pedantic(separator.separate, args=(x, 16000), rounds=2, iterations=1, warmup_rounds=1)
    benchmark.extra_info["rtf"] = benchmark.stats.stats.mean / 10
    assert len(result.stems) == 5


def test_stream_resampler_one_minute(benchmark) -> None:
    """44.1 kHz -> 16 kHz in 64k-sample blocks, one minute of audio."""
    from mstt.inference import StreamResampler, iter_blocks

    x = np.random.default_rng(0).standard_normal(60 * RATE).astype(np.float32)

    def run() -> int:
        resampler = StreamResampler(RATE, 16000)
        n = sum(resampler.push(b).shape[-1] for b in iter_blocks(x))
        return n + resampler.push(x[:0], last=True).shape[-1]

    assert benchmark(run) == 60 * 16000


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    else:
        main()
