"""``mstt bench``'s measurements of memory, and its guard: a recipe that would starve in the budget or exhaust memory is stopped.

:class:`PeakMemory` reads the peak over a span; :func:`machine_memory_mb` the memory the bench
runs in; :class:`StepGuard` is the trainer's ``on_step`` hook for one benched recipe (see
:mod:`mstt.bench`). Step times and memory readings are handed in, so the projections are
testable without training.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from mstt.errors import MsttError


class PeakMemory:
    """Peak memory over a span: torch's allocator on CUDA, the process's resident set on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:  # "5" resets the kernel's peak-RSS counter (VmHWM) of this process
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass  # then the peak is the process's lifetime peak
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def megabytes(self) -> float:
        """The peak so far, in MiB."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def machine_memory_mb(device: torch.device) -> float | None:
    """The memory the bench runs in, MiB: the GPU's; on CPU physical RAM, or this process's cgroup limit when lower."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 2**20
    total: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) / 1024  # kB
                break
    except OSError:
        pass
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
        except (ValueError, OSError, AttributeError):
            return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) / 2**20 < total:  # "max" or a huge number: no limit
            total = int(text) / 2**20
    return total


# ------------------------------------------------------------------ the guard

WARMUP_STEPS = 1  # a run's first steps (data loader start-up, allocator) are not timed
TIMED_STEPS = 5  # steps timed after the warm-up before the step projection is final
MIN_STEP_SHARE = 0.10  # a recipe projected under this share of the fastest recipe's steps is refused
MAX_MEMORY_SHARE = 0.75  # ... and one whose projected peak passes this share of the machine's memory
# Projected peak = the peak so far x this: a margin, not a measurement. From the first step on
# the peak holds the weights, gradients and one batch's activations (Adam's two moments come
# with the first update); what comes later (validation and evaluation forward passes without
# gradients but on other windows, the allocator's growth over many steps, the 30-s
# real-time-factor pass) holds fewer activations than a training step but adds to what is resident.
MEMORY_MARGIN = 1.25
FIX = "add recipes/quick.yaml (it sizes trunks and separators for CPU minutes) or pick a smaller recipe"


class BenchRefused(MsttError):
    """The guard stopped a recipe: it would starve in the budget or exhaust memory (``--force`` overrides)."""


@dataclass
class StepGuard:
    """``on_step`` hook for one benched recipe: projects its steps and peak memory, refuses or warns.

    ``fastest`` is ``(recipe, steps)`` of the recipe with the most steps measured so far in the
    bench (None for the first: only memory is checked then). ``memory()`` gives the peak MiB so
    far and ``total_mb`` the machine's memory (None: not checked); both are injected, as are
    the step times (``__call__``), so the projection is testable without training.
    """

    name: str
    budget_seconds: float | None  # trainer.max_minutes x 60; None: every recipe gets max_steps
    max_steps: int
    fastest: tuple[str, int] | None
    total_mb: float | None
    memory: Callable[[], float]
    force: bool = False
    say: Callable[[str], None] = print
    times: list[float] = field(default_factory=list)  # seconds of the steps timed after the warm-up
    seen: int = 0  # steps seen in this session
    projected_steps: int | None = None  # the final projection, once TIMED_STEPS were timed
    steps_checked: bool = False
    memory_checked: bool = False

    def steps_for(self, step_seconds: float) -> int:
        """Steps the budget allows at ``step_seconds`` a step (max_steps at most)."""
        if self.budget_seconds is None or step_seconds <= 0:
            return self.max_steps
        return min(self.max_steps, int(self.budget_seconds / step_seconds))

    def __call__(self, step: int, seconds: float) -> None:
        """After each training step: check memory, time the step, decide once enough steps are timed."""
        self.seen += 1
        if not self.memory_checked:
            self._check_memory()
        if self.seen <= WARMUP_STEPS:
            return
        self.times.append(seconds)
        if not self.steps_checked:
            self._check_steps()

    def _check_memory(self) -> None:
        if self.total_mb is None:
            return
        peak = float(self.memory())
        projected = peak * MEMORY_MARGIN
        if projected > MAX_MEMORY_SHARE * self.total_mb:
            self.memory_checked = True
            self._act(
                f"peak memory {peak:,.0f} MB after {self.seen} step{'s' * (self.seen > 1)} projects to {projected:,.0f} MB "
                f"(x{MEMORY_MARGIN:g} for validation, evaluation and allocator growth), past "
                f"{MAX_MEMORY_SHARE:.0%} of this machine's {self.total_mb:,.0f} MB",
                f"{FIX}, or lower trainer.batch_size",
            )

    def _check_steps(self) -> None:
        if self.budget_seconds is None or self.fastest is None:
            self.steps_checked = True  # nothing to compare with: every recipe gets max_steps, or this is the first
            return
        ref_name, ref_steps = self.fastest
        floor = MIN_STEP_SHARE * ref_steps
        # Final after TIMED_STEPS steps (their mean); before that, only a recipe too slow even
        # at its fastest step so far is stopped (a 90-s step must not wait for five more).
        final = len(self.times) >= TIMED_STEPS
        step_seconds = sum(self.times) / len(self.times) if final else min(self.times)
        steps = self.steps_for(step_seconds)
        if final:
            self.projected_steps = steps
            self.steps_checked = True
        if steps < floor:
            self.steps_checked = True
            self._act(
                f"at {step_seconds:.2f} s a step the {self.budget_seconds / 60:g}-minute budget allows ~{steps:,} steps, "
                f"under {MIN_STEP_SHARE:.0%} of the {ref_steps:,} of {ref_name} (the fastest so far)",
                f"{FIX}, or raise trainer.max_minutes",
            )

    def _act(self, projection: str, fix: str) -> None:
        if self.force:
            self.say(f"bench: warning: {self.name}: {projection}; training on (--force)")
            return
        raise BenchRefused(f"{self.name} refused: {projection}; {fix}, or pass --force to train it anyway")


