"""A run's progress (what a checkpoint carries besides the weights), its result, and the budget projection."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

PROJECT_AFTER_STEPS = 20  # steps timed before the budget is projected
LONG_RUN_HOURS = 3.0  # a projection past this is said up front


@dataclass
class TrainResult:
    """What a call to :func:`train` did."""

    best_path: Path
    last_path: Path
    step: int
    stopped: str  # max_steps | max_minutes | early_stopping | interrupted | finished_before
    history: list[dict[str, Any]] = field(default_factory=list)  # validation rows


@dataclass
class TrainState:
    """Everything about the run's progress that a checkpoint carries besides the weights."""

    step: int = 0
    epoch: int = 0
    epoch_batches: int = 0  # batches of ``epoch`` already consumed
    elapsed: float = 0.0  # training seconds before this session
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    budget_minutes: float | None = None  # the trainer.max_minutes the saved run trained under

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> TrainState:
        """The state a checkpoint saved."""
        minutes = ((saved.get("recipe") or {}).get("trainer") or {}).get("max_minutes")
        return cls(
            step=int(saved["step"]),
            epoch=int(saved["epoch"]),
            epoch_batches=int(saved["epoch_batches"]),
            elapsed=float(saved["elapsed"]),
            best=dict(saved["best"]),
            history=list(saved["history"]),
            stopped=str(saved.get("stopped") or ""),
            budget_minutes=None if minutes is None else float(minutes),
        )

    def limits_reached(self, config: DictConfig) -> bool:
        """A finished run trains again only when its budget was raised since (not after early stopping).

        A run stopped by its time budget ends a little before it (no further step fitted), so it
        counts as spent while ``trainer.max_minutes`` is no higher than the one it ran under.
        """
        minutes = config.trainer.max_minutes
        spent = minutes is not None and (
            self.elapsed >= minutes * 60
            or (self.stopped == "max_minutes" and self.budget_minutes is not None and minutes <= self.budget_minutes)
        )
        return self.stopped == "early_stopping" or self.step >= config.trainer.max_steps or spent


def projection_note(
    step_seconds: float, steps_left: int, max_minutes: float | None, elapsed: float, device: torch.device
) -> str | None:
    """One line when the rest of the budget projects past :data:`LONG_RUN_HOURS`; else None."""
    seconds = step_seconds * steps_left
    if max_minutes is not None:
        seconds = min(seconds, max(0.0, max_minutes * 60 - elapsed))
    if seconds < LONG_RUN_HOURS * 3600:
        return None
    where = "this CPU" if device.type == "cpu" else f"this {device.type} device"
    return (
        f"note: at {step_seconds:.2f} s a step, the {steps_left:,} steps left project to {seconds / 3600:.1f} hours "
        f"on {where}; for a model in minutes add recipes/quick.yaml, or bound it with trainer.max_minutes=N"
    )
