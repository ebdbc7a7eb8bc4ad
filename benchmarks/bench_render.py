"""Rendering speed of the synthetic generator: one 30 s five-instrument track, one core.

    .venv/bin/pytest benchmarks/bench_render.py          # pytest-benchmark table
    .venv/bin/python benchmarks/bench_render.py [--tracks N] [--seconds S]   # x real time per core
"""

from __future__ import annotations

import argparse
import time

from mstt.data.synth import SOURCES, compose, mix_stems, render_stem

SAMPLE_RATE = 16000
SECONDS = 30.0


def render_track(index: int = 0, seconds: float = SECONDS, sample_rate: int = SAMPLE_RATE) -> float:
    """Compose, render every stem and mix one track in this process; returns seconds of audio."""
    arrangement = compose(SOURCES, seconds, seed=0, index=index)
    n_samples = int(round(seconds * sample_rate))
    raw = [render_stem(inst, sample_rate, n_samples) for inst in arrangement.instruments]
    mix_stems(raw, sample_rate)
    return seconds


def test_render_speed(benchmark) -> None:
    """One 30 s track with all five sources; extra_info holds x real time."""
    seconds = benchmark.pedantic(render_track, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["x_real_time_per_core"] = seconds / benchmark.stats.stats.mean
    assert seconds == SECONDS


def main() -> None:
    """Print x real time per core over a few different tracks (tempo and density differ per track)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE)
    args = parser.parse_args()
    render_track(0, 2.0, args.sample_rate)  # warm up: library loading, page cache of the soundfont
    cpu, wall = [], []
    for index in range(args.tracks):
        start, start_cpu = time.perf_counter(), time.process_time()
        render_track(index, args.seconds, args.sample_rate)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    total = args.tracks * args.seconds
    # CPU time of this one process is the per-core cost even when other work shares the cores;
    # wall time is what a user waits for on this machine right now.
    print(f"rendered {args.tracks} x {args.seconds:.0f} s tracks, {len(SOURCES)} stems each, {args.sample_rate} Hz: "
          f"{total / sum(cpu):.0f}x real time per core (CPU time; slowest track {args.seconds / max(cpu):.0f}x), "
          f"{total / sum(wall):.0f}x by wall clock")


if __name__ == "__main__":
    main()
