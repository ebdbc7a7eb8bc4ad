"""A tiny Cerberus over-fits one 2-second random-note example: every head's loss drops 10x."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mstt.nn.build import build_model
from mstt.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SR, HOP = 8000, 128


def random_note_example(seconds: float = 2.0, sources: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Sources of harmonic notes at random pitches and times, with their piano rolls."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SR)
    frames = 1 + samples // HOP
    t = np.arange(samples) / SR
    waves = np.zeros((sources, samples), np.float32)
    roll = np.zeros((sources, 88, frames), np.float32)
    for s in range(sources):
        low = 40 + 24 * s  # sources in different but overlapping registers
        for _ in range(4):
            pitch = int(rng.integers(low, low + 12))
            start = rng.uniform(0, seconds - 0.4)
            end = start + rng.uniform(0.2, 0.6)
            f0 = 440.0 * 2 ** ((pitch - 69) / 12)
            on = (t >= start) & (t < end)
            for harmonic in (1, 2, 3):
                waves[s] += on * np.sin(2 * np.pi * f0 * harmonic * t) * 0.2 / harmonic
            roll[s, pitch - 21, round(start * SR / HOP) : round(end * SR / HOP)] = 1.0
    sources_t = torch.from_numpy(waves)[None]
    return {"mixture": sources_t.sum(1), "sources": sources_t, "roll": torch.from_numpy(roll)[None]}


def test_small_cerberus_overfits_one_example():
    torch.manual_seed(0)
    config = load_recipe(
        [RECIPES / "cerberus_set1.yaml"],
        [
            f"data.sample_rate={SR}",
            "features.n_fft=256",
            f"features.hop_length={HOP}",
            "model.encoder.options.hidden_size=64",
            "model.encoder.options.num_layers=2",
            "model.encoder.options.dropout=0.0",
            # Sigmoid masks can reach the truncated PSA target exactly; softmax masks have a floor.
            "model.heads.mi.options.activation=sigmoid",
        ],
    )
    model = build_model(config)
    batch = random_note_example()
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    _, first = model.losses(batch)
    first = {k: v.item() for k, v in first.items()}
    for _ in range(250):
        optimiser.zero_grad()
        total, per_head = model.losses(batch)
        total.backward()
        optimiser.step()
    last = {k: v.item() for k, v in per_head.items()}
    assert set(last) == {"dc", "mi", "tr"}
    for head in last:
        assert last[head] < first[head] / 10, f"{head}: {first[head]:.4f} -> {last[head]:.4f}"
