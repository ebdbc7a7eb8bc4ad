"""Optimisers and learning-rate schedules from the recipe's ``optim`` section.

Schedules and their ``optim.schedule_options`` (anything else is an error):

- ``none``: constant learning rate; takes no options.
- ``plateau``: multiply by ``factor`` after ``patience`` validations without improvement of
  ``trainer.monitor`` (direction ``trainer.monitor_mode``); ``threshold``, ``min_lr``.
- ``cosine``: linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr`` at
  ``trainer.max_steps``, or at ``trainer.max_minutes`` of training when that comes first (the
  progress is the larger of the step and the time fractions), so a run on a wall-clock budget
  (the demo, ``mstt bench``) still ends its schedule.
- ``step``: multiply by ``gamma`` every ``step_size`` steps (default: a third of max_steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from omegaconf import DictConfig

from mstt.errors import MsttError
from mstt.recipe import component_options

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass
class PlateauOptions:
    """Reduce on plateau of the monitored validation metric."""

    factor: float = 0.5
    patience: int = 3  # validations
    threshold: float = 1e-4
    min_lr: float = 0.0


@dataclass
class CosineOptions:
    """Warm-up then cosine decay over trainer.max_steps or trainer.max_minutes, whichever ends first."""

    warmup_steps: int = 0
    min_lr: float = 0.0


@dataclass
class StepOptions:
    """Step decay."""

    step_size: int | None = None  # steps; None = max_steps // 3
    gamma: float = 0.1


SCHEDULES: dict[str, type | None] = {
    "none": None,
    "plateau": PlateauOptions,
    "cosine": CosineOptions,
    "step": StepOptions,
}


def build_optimizer(config: DictConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser ``optim.name`` with ``optim.lr`` and ``optim.weight_decay``."""
    o = config.optim
    name = str(o.name).lower()
    if o.lr <= 0:
        raise MsttError(f"optim.lr: {o.lr} must be positive, e.g. 1e-3")
    if o.weight_decay < 0:
        raise MsttError(f"optim.weight_decay: {o.weight_decay} must not be negative")
    if o.grad_clip < 0:
        raise MsttError(f"optim.grad_clip: {o.grad_clip} must not be negative; 0 disables clipping")
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum)
    raise MsttError(f"optim.name: unknown optimiser '{o.name}'; use one of {', '.join(OPTIMIZERS)}")


class Schedule:
    """A learning-rate schedule stepped after every optimiser step and after every validation."""

    def __init__(self, config: DictConfig, optimizer: torch.optim.Optimizer) -> None:
        name = str(config.optim.schedule).lower()
        if name not in SCHEDULES:
            raise MsttError(
                f"optim.schedule: unknown schedule '{config.optim.schedule}'; use one of {', '.join(SCHEDULES)}"
            )
        self.name = name
        self.options = component_options(SCHEDULES[name], config.optim.schedule_options, "optim.schedule_options")
        max_steps = int(config.trainer.max_steps)
        minutes = config.trainer.max_minutes
        self.budget_seconds = float(minutes) * 60 if minutes else None
        self.time_progress = 0.0  # training seconds / budget, set by after_step
        self.scheduler: Any = None
        if name == "plateau":
            p: PlateauOptions = self.options
            _check(p.factor > 0 and p.factor < 1, "factor", p.factor, "between 0 and 1, e.g. 0.5")
            _check(p.patience >= 0, "patience", p.patience, "0 or more validations")
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=config.trainer.monitor_mode,
                factor=p.factor,
                patience=p.patience,
                threshold=p.threshold,
                min_lr=p.min_lr,
            )
        elif name == "cosine":
            c: CosineOptions = self.options
            _check(c.warmup_steps >= 0, "warmup_steps", c.warmup_steps, "0 or more steps")
            _check(0 <= c.min_lr <= config.optim.lr, "min_lr", c.min_lr, "between 0 and optim.lr")
            floor = c.min_lr / config.optim.lr

            def cosine(step: int) -> float:
                if step < c.warmup_steps:
                    return (step + 1) / c.warmup_steps
                span = max(1, max_steps - c.warmup_steps)
                progress = min(1.0, max((step - c.warmup_steps) / span, self.time_progress))
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
        elif name == "step":
            s: StepOptions = self.options
            size = s.step_size if s.step_size is not None else max(1, max_steps // 3)
            _check(size >= 1, "step_size", size, "at least 1 step")
            _check(s.gamma > 0, "gamma", s.gamma, "positive, e.g. 0.1")
            self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=size, gamma=s.gamma)

    def after_step(self, seconds: float = 0.0) -> None:
        """Advance per-step schedules; ``seconds`` of training so far (the same on every rank)."""
        if self.budget_seconds:
            self.time_progress = min(1.0, seconds / self.budget_seconds)
        if self.name in ("cosine", "step"):
            self.scheduler.step()

    def after_validation(self, monitored: float) -> None:
        """Feed the monitored validation value to the plateau schedule."""
        if self.name == "plateau":
            self.scheduler.step(monitored)

    def state_dict(self) -> dict[str, Any]:
        """Scheduler state (empty without a schedule)."""
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


def _check(ok: bool, key: str, value: Any, want: str) -> None:
    if not ok:
        raise MsttError(f"optim.schedule_options.{key}: {value} is out of range; use {want}")


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate."""
    return float(optimizer.param_groups[0]["lr"])
