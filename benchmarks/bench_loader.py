"""Loader throughput: Slakh training crops through a torch DataLoader, from the decoded cache
versus decoding the FLAC stems on every step.

    .venv/bin/pytest benchmarks/bench_loader.py          # pytest-benchmark
    .venv/bin/python benchmarks/bench_loader.py          # examples/s for 0, 2 and 4 workers

Fixture: 16 tracks of 20 s, 44.1 kHz FLAC, written in the Slakh layout; 2-s crops at 16 kHz of
piano, guitar, bass, drums and strings, batch 8.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mstt.data.audio import resample  # noqa: E402
from mstt.data.slakh import SlakhAdapter, SlakhOptions  # noqa: E402
from tests.data.fixtures import write_slakh  # noqa: E402

SOURCES = ["piano", "guitar", "bass", "drums", "strings"]
SR, HOP, CROP, BATCH = 16000, 256, 2.0, 8
N_TRACKS, SECONDS = 16, 20.0
BATCHES = 24


def make_fixture(root: Path) -> Path:
    """Write the benchmark's Slakh-layout fixture (once per root)."""
    if not (root / "train").exists():
        write_slakh(root, {"train": [f"Track{i:05d}" for i in range(1, N_TRACKS + 1)]}, seconds=SECONDS)
    return root


class DecodeEveryStep(Dataset):
    """The baseline the cache replaces: seek into each FLAC stem, decode, resample, per item."""

    def __init__(self, adapter: SlakhAdapter, length: int, seed: int = 0) -> None:
        self.adapter, self.tracks, self.length, self.seed = adapter, adapter.tracks("train"), length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        track = self.tracks[int(rng.integers(len(self.tracks)))]
        start = float(rng.uniform(0, track.seconds - CROP))
        out = np.zeros((len(SOURCES), int(CROP * SR)), dtype=np.float32)
        for i, source in enumerate(SOURCES):
            for path in track.stems[source]:
                with sf.SoundFile(str(path)) as f:
                    f.seek(int(start * f.samplerate))
                    audio = f.read(int(CROP * f.samplerate), dtype="float32")
                    seg = resample(audio, f.samplerate, SR)[: out.shape[1]]
                out[i, : len(seg)] += seg
        return {"mixture": torch.from_numpy(out.sum(0)), "sources": torch.from_numpy(out)}


def adapter_for(root: Path) -> SlakhAdapter:
    """The benchmark adapter with its cache warmed (the steady state of a training run)."""
    options = SlakhOptions(drop_silent_crops=False, cache_dir=str(root.parent / f"{root.name}-cache"))
    adapter = SlakhAdapter(make_fixture(root), SOURCES, SR, options)
    adapter.prepare("train")
    return adapter


def examples_per_second(dataset: Dataset, workers: int, batches: int = BATCHES) -> float:
    """Throughput of ``batches`` batches of BATCH items (after one warm-up batch)."""
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers, shuffle=True,
                        persistent_workers=False, generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # worker start-up and first-touch costs are not loader speed
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            n += len(next(it)["mixture"])
        except StopIteration:
            break
    return n / (time.perf_counter() - start)


def _cached(root: Path) -> Dataset:
    ds = adapter_for(root).training_dataset("train", CROP, HOP, seed=0)
    ds._length = (BATCHES + 1) * BATCH  # exactly the batches measured
    return ds


def test_loader_cached_workers_0(benchmark, tmp_path_factory) -> None:
    ds = _cached(tmp_path_factory.getbasetemp() / "bench_slakh")
    benchmark.pedantic(lambda: [ds[i] for i in range(BATCH)], rounds=20)


def test_loader_cached_workers_2(benchmark, tmp_path_factory) -> None:
    ds = _cached(tmp_path_factory.getbasetemp() / "bench_slakh")
    benchmark.pedantic(lambda: examples_per_second(ds, 2, batches=8), rounds=3)


def test_loader_decode_every_step(benchmark, tmp_path_factory) -> None:
    ds = DecodeEveryStep(adapter_for(tmp_path_factory.getbasetemp() / "bench_slakh"), BATCH)
    benchmark.pedantic(lambda: [ds[i] for i in range(BATCH)], rounds=5)


def main() -> None:
    """Print examples/s by number of workers, cached and decoding every step."""
    # With several intra-op threads on a busy small machine, default_collate's torch.stack of
    # the rolls spins in OpenMP (60 ms instead of 0.03 ms here); workers already run 1 thread.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "slakh"
        start = time.perf_counter()
        adapter = adapter_for(root)
        print(f"fixture + first decode into the cache: {time.perf_counter() - start:.1f} s "
              f"({N_TRACKS} tracks x {SECONDS:.0f} s, 44.1 kHz FLAC, {os.cpu_count()} CPUs)")
        print("torch threads in the main process: 1")
        print(f"{'workers':>8}{'cached ex/s':>14}{'decode ex/s':>14}")
        for workers in (0, 2, 4):
            cached = _cached(root)
            decode = DecodeEveryStep(adapter, (BATCHES // 4 + 1) * BATCH)
            print(f"{workers:>8}{examples_per_second(cached, workers):>14.0f}"
                  f"{examples_per_second(decode, workers, BATCHES // 4):>14.0f}")


if __name__ == "__main__":
    main()
