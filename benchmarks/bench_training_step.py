"""One training step (forward + backward + clip + Adam) of the paper-size models on the same batch.

    .venv/bin/pytest benchmarks/bench_training_step.py                 # pytest-benchmark table
    .venv/bin/python benchmarks/bench_training_step.py [--rounds N]    # seconds per step, per model
    .venv/bin/python benchmarks/bench_training_step.py --overlay recipes/quick.yaml --batch 8 convtasnet convtasnet_fp32

Models as their recipes build them: Cerberus set 4 (4 x 300 BLSTM, DC + MI + TR heads) and the
asteroid separators of plugins/mstt-asteroid (ConvTasNet, DPRNN-TasNet, SuDoRM-RF) at their
papers' sizes, and Cerberus again under bf16 autocast and with its DC head on a quarter of the
frames (the trainer's CPU levers). Input: batch 2 of 2-second crops at 16 kHz with 5 sources
(set 4) and their piano rolls; the same tensors for every model. On the GPU when one is visible,
else the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mstt.errors import MsttError  # noqa: E402
from mstt.nn.build import build_model  # noqa: E402
from mstt.recipe import load_recipe  # noqa: E402
from mstt.train.precision import resolve_precision  # noqa: E402

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# name -> (recipe, overrides). The Cerberus rows are the trainer's CPU levers one by one: fp32
# eager, bf16 autocast (needs a CPU or GPU with native bf16), and the DC head on a quarter of the frames.
MODELS = {
    "cerberus": ("cerberus_set4.yaml", ["trainer.precision=fp32"]),
    "cerberus_bf16": ("cerberus_set4.yaml", ["trainer.precision=bf16"]),
    "cerberus_dc25": ("cerberus_set4.yaml", ["trainer.precision=fp32", "model.heads.dc.train_frames=0.25"]),
    "cerberus_bf16_dc25": ("cerberus_set4.yaml", ["trainer.precision=bf16", "model.heads.dc.train_frames=0.25"]),
    # bf16 everywhere but the recurrent trunk, which stays float32 (what it costs of bf16's speed).
    "cerberus_bf16_lstm_fp32": ("cerberus_set4.yaml", ["trainer.precision=bf16", "model.encoder.options.fp32=true"]),
    "convtasnet": ("convtasnet_set4.yaml", []),
    "dprnn": ("dprnn_set4.yaml", []),
    "sudormrf": ("sudormrf_set4.yaml", []),
    # The separators train under the same precision rule (bf16 where the CPU has it); these rows
    # show whether bf16 pays for convolutions and chunked LSTMs as it does for the BLSTM trunk.
    "convtasnet_fp32": ("convtasnet_set4.yaml", ["trainer.precision=fp32"]),
    "dprnn_fp32": ("dprnn_set4.yaml", ["trainer.precision=fp32"]),
    "sudormrf_fp32": ("sudormrf_set4.yaml", ["trainer.precision=fp32"]),
}
BATCH, SECONDS = 2, 2.0
ROUNDS = 3
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def make_batch(model: nn.Module, batch: int = BATCH, seconds: float = SECONDS, seed: int = 0) -> dict[str, torch.Tensor]:
    """Sources ``(B, S, N)`` of decaying tones, their mixture ``(B, N)`` and sparse rolls ``(B, S, 88, T)``."""
    gen = torch.Generator().manual_seed(seed)
    sr, n_src = model.sample_rate, len(model.sources)
    samples = int(seconds * sr)
    t = torch.arange(samples) / sr
    f0 = 55.0 * 2 ** (torch.randint(0, 48, (batch, n_src, 1), generator=gen) / 12)
    sources = 0.2 * torch.sin(2 * torch.pi * f0 * t) * torch.exp(-3 * ((t * 2) % 1.0))
    sources = sources + 0.01 * torch.randn(sources.shape, generator=gen)
    hop = 256  # set 4 recipes: STFT hop 256 -> samples // 256 + 1 frames (centred)
    frames = samples // hop + 1
    roll = (torch.rand(batch, n_src, 88, frames, generator=gen) > 0.98).float()
    return {"mixture": sources.sum(1), "sources": sources, "roll": roll}


def to_device(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch on :data:`DEVICE`."""
    return {k: v.to(DEVICE) for k, v in batch.items()}


def build(name: str, overlays: tuple[Path, ...] = (), extra: tuple[str, ...] = ()) -> tuple[nn.Module, bool]:
    """The model of ``name``'s recipe (plus ``overlays``, e.g. quick.yaml, and ``extra`` overrides) on :data:`DEVICE`.

    Returns it and whether it trains under bf16 autocast. Raises MsttError when the variant asks
    for bf16 and the device has none.
    """
    recipe, overrides = MODELS[name]
    config = load_recipe([RECIPES / recipe, *overlays], [*overrides, *extra])
    torch.manual_seed(0)
    precision = resolve_precision(str(config.trainer.precision), bool(config.trainer.amp), DEVICE)
    return build_model(config).to(DEVICE), precision.autocast


def training_step(model: nn.Module, batch: dict[str, torch.Tensor], autocast: bool = False) -> Callable[[], float]:
    """A closure doing one step as the trainer does: losses (under bf16 autocast if asked), backward, clip at 5, Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> float:
        with torch.autocast(device_type=DEVICE.type, dtype=torch.bfloat16, enabled=autocast):
            total, _ = model.losses(batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return float(total.detach())  # waits for the device, so the step is timed whole

    return step


@pytest.mark.parametrize("name", list(MODELS))
def test_training_step(benchmark, name: str) -> None:
    if not name.startswith("cerberus"):
        pytest.importorskip("mstt_asteroid", reason="the asteroid separators need plugins/mstt-asteroid installed")
    try:
        model, autocast = build(name)
    except MsttError as exc:  # bf16 asked for on a machine without it
        pytest.skip(str(exc))
    step = training_step(model, to_device(make_batch(model)), autocast)
    loss = benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert torch.isfinite(torch.tensor(loss))
    benchmark.extra_info["params"] = sum(p.numel() for p in model.parameters())
    benchmark.extra_info["audio_seconds_per_step"] = BATCH * SECONDS
    benchmark.extra_info["device"] = str(DEVICE)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["audio_seconds_per_second"] = BATCH * SECONDS / benchmark.stats.stats.mean


def main() -> None:
    """Print seconds per training step of each model (median of ``--rounds`` after one warm-up)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--overlay", type=Path, action="append", default=[],
                        help="recipe overlay applied to every model, e.g. recipes/quick.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="recipe override applied to every model after the overlays, e.g. "
                             "model.separator_options.convtasnet.hid_chan=128")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"crops per step (default {BATCH}; the quick recipes train 8)")
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"some of {', '.join(MODELS)} (default: all)")
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    for name in args.models or list(MODELS):
        try:
            model, autocast = build(name, tuple(args.overlay), tuple(args.overrides))
        except MsttError as exc:
            print(f"{name:<18} skipped: {exc}", flush=True)
            continue
        step = training_step(model, to_device(make_batch(model, args.batch)), autocast)
        step()
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        params = sum(p.numel() for p in model.parameters())
        rate = args.batch * SECONDS / median
        print(f"{name:<18} {DEVICE}  {params / 1e6:5.2f} M params  {median:7.3f} s/step  {rate:6.2f} audio s/s", flush=True)


if __name__ == "__main__":
    main()
