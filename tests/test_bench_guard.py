"""``mstt bench``'s guard: step and memory projections from injected step times and readings; refuse, warn, --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mstt.bench
from mstt.benchguard import MAX_MEMORY_SHARE, MEMORY_MARGIN, TIMED_STEPS, BenchRefused, StepGuard, machine_memory_mb
from mstt.cli import main

CERBERUS = ("cerberus_set4", 2400)  # the fastest recipe so far: its steps in the budget


def guard(*, fastest=CERBERUS, budget=420.0, max_steps=2400, total=None, peak=1000.0, force=False, said=None):
    """A guard for 'convtasnet_set4' with a fixed peak-memory reading (MiB)."""
    return StepGuard(
        "convtasnet_set4", budget, max_steps, fastest, total, lambda: peak, force,
        say=(said.append if said is not None else print),
    )


def feed(g: StepGuard, times: list[float]) -> None:
    """Steps 1, 2, ... with these wall seconds."""
    for i, seconds in enumerate(times, start=1):
        g(i, seconds)


def test_a_90_second_step_is_refused_after_one_timed_step():
    g = guard()
    g(1, 95.0)  # the warm-up step: not timed, nothing decided
    with pytest.raises(BenchRefused) as raised:
        g(2, 90.0)  # 420 s / 90 s = 4 steps, under 10% of 2400: no need to wait for four more
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("convtasnet_set4 refused: at 90.00 s a step the 7-minute budget allows ~4 steps")
    assert "under 10% of the 2,400 of cerberus_set4 (the fastest so far)" in message
    assert "recipes/quick.yaml" in message and "--force" in message


def test_force_turns_the_refusal_into_one_warning():
    said: list[str] = []
    g = guard(force=True, said=said)
    feed(g, [95.0, 90.0, 90.0, 90.0])
    assert len(said) == 1 and said[0].startswith("bench: warning: convtasnet_set4: at 90.00 s a step")
    assert said[0].endswith("training on (--force)")


def test_the_warm_up_step_is_not_timed():
    g = guard()
    feed(g, [300.0] + [0.25] * 10)  # a slow first step (data loader, allocator), then fast ones
    assert g.projected_steps == 1680 and g.steps_checked


def test_the_final_projection_uses_the_mean_of_the_timed_steps():
    # The fastest timed step (1 s: 420 steps, 17.5%) passes; the mean over TIMED_STEPS does not.
    times = [5.0, 1.0] + [10.0] * (TIMED_STEPS - 1)
    g = guard()
    feed(g, times[:-1])
    assert not g.steps_checked and g.projected_steps is None  # still timing
    with pytest.raises(BenchRefused, match=r"at 8\.20 s a step the 7-minute budget allows ~51 steps"):
        g(len(times), times[-1])


def test_a_tenth_of_the_fastest_passes_and_less_is_refused():
    g = guard()
    feed(g, [1.0] + [1.75] * TIMED_STEPS)  # 420 / 1.75 = 240 steps = 10% of 2400
    assert g.projected_steps == 240
    with pytest.raises(BenchRefused, match=r"at 1\.76 s a step the 7-minute budget allows ~238 steps"):
        feed(guard(), [1.0] + [1.76] * TIMED_STEPS)


@pytest.mark.parametrize("fastest, budget", [(None, 420.0), (CERBERUS, None)])
def test_no_step_check_for_the_first_recipe_or_without_a_time_budget(fastest, budget):
    g = guard(fastest=fastest, budget=budget)
    feed(g, [90.0] * (TIMED_STEPS + 2))  # no refusal
    assert g.steps_checked


def test_steps_are_capped_at_max_steps():
    g = guard(max_steps=300, fastest=("cerberus_set4", 300))
    assert g.steps_for(0.01) == 300 and g.steps_for(2.0) == 210


@pytest.mark.parametrize(
    "peak, refused",
    [
        (18_500.0, True),  # the paper-size ConvTasNet's measured peak on the 24 GB VM
        (15_000.0, True),  # 15 GB x 1.25 = 18.75 GB: past 75% of 24 GB, though 15 GB is not yet
        (14_000.0, False),  # 17.5 GB projected: under 18 GB
        (1_500.0, False),  # the quick Cerberus
    ],
)
def test_memory_projected_past_three_quarters_of_the_machine_is_refused(peak, refused):
    total = 24_000.0
    assert (peak * MEMORY_MARGIN > MAX_MEMORY_SHARE * total) == refused
    g = guard(total=total, peak=peak, fastest=None)
    if not refused:
        feed(g, [1.0] * 3)
        return
    with pytest.raises(BenchRefused) as raised:
        g(1, 95.0)  # memory is checked from the first step on
    message = str(raised.value)
    assert f"peak memory {peak:,.0f} MB after 1 step projects to {peak * MEMORY_MARGIN:,.0f} MB" in message
    assert "past 75% of this machine's 24,000 MB" in message and "trainer.batch_size" in message
    assert "--force" in message and "\n" not in message


def test_memory_warns_once_with_force():
    said: list[str] = []
    g = guard(total=24_000.0, peak=18_500.0, force=True, fastest=None, said=said)
    feed(g, [95.0, 90.0, 90.0])
    assert len(said) == 1 and "peak memory 18,500 MB" in said[0] and said[0].endswith("training on (--force)")


def test_machine_memory_is_the_physical_ram_or_less():
    total = machine_memory_mb(torch.device("cpu"))
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        ram = int(next(line for line in meminfo.read_text().splitlines() if line.startswith("MemTotal:")).split()[1]) / 1024
        assert 0 < total <= ram
    else:
        assert total is None or total > 0


# ------------------------------------------------------------------ wired into the bench

BASE = Path(__file__).resolve().parents[1] / "recipes" / "_base" / "common.yaml"
TINY = """
base: [{base}]
name: {name}
features: {{n_fft: 256, hop_length: 64}}
model:
  encoder: {{options: {{hidden_size: 8, num_layers: 1, dropout: 0.0}}}}
  heads: {{mi: {{weight: 1.0}}}}
data:
  sources: [piano, guitar]
  sample_rate: 8000
  crop_seconds: 1.0
  eval_segment_seconds: 2.0
  options: {{tracks: 3, seconds: 4.0, jobs: 1}}
trainer: {{batch_size: 2, max_steps: 2, validate_every: 2, log_every: 1, num_workers: 0, device: cpu}}
eval: {{report_examples: 0}}
"""


def test_bench_refuses_goes_on_and_exits_2_and_force_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mstt.bench, "RTF_SECONDS", 2.0)
    monkeypatch.setattr(mstt.bench, "machine_memory_mb", lambda device: 1.0)  # a 1-MB machine: every recipe is too big
    paths = []
    for name in ("tiny_a", "tiny_b"):
        paths.append(tmp_path / f"{name}.yaml")
        paths[-1].write_text(TINY.format(base=BASE, name=name))
    out = tmp_path / "bench"
    args = ["bench", *map(str, paths), "--out", str(out), "--no-progress"]

    assert main(args) == 2
    lines = capsys.readouterr().out.splitlines()
    refusals = [line for line in lines if " refused: peak memory " in line]
    assert [line.split()[1] for line in refusals] == ["tiny_a", "tiny_b"]  # the bench went on to the second
    assert lines[-1] == "bench: refused tiny_a, tiny_b (no rows); run again with --force to train them anyway"
    assert not (out / "bench.json").exists()

    assert main(args + ["--force"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("bench: warning: tiny_a: peak memory") == 1 and "training on (--force)" in printed
    assert [r["recipe"] for r in json.loads((out / "bench.json").read_text())["rows"]] == ["tiny_a", "tiny_b"]
