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
from typing import Any, Callable, Iterable

import torch
from omegaconf import DictConfig

from mstt.checks import schedule_options
from mstt.schema import OPTIMIZERS, SCHEDULES, CosineOptions, PlateauOptions, StepOptions  # noqa: F401  (re-exported)

# Each takes (params, optim section); the recipe check has refused any other name.
_OPTIMIZERS: dict[str, Callable[[list[torch.nn.Parameter], DictConfig], torch.optim.Optimizer]] = {
    "adam": lambda params, o: torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay),
    "adamw": lambda params, o: torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay),
    "sgd": lambda params, o: torch.optim.SGD(params, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum),
}


def build_optimizer(config: DictConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser ``optim.name`` with ``optim.lr`` and ``optim.weight_decay`` (checked by mstt.checks)."""
    name = str(config.optim.name).lower()
    assert name in _OPTIMIZERS and config.optim.lr > 0, "validate_recipe checks optim"
    return _OPTIMIZERS[name](list(params), config.optim)


class Schedule:
    """A learning-rate schedule stepped after every optimiser step and after every validation."""

    def __init__(self, config: DictConfig, optimizer: torch.optim.Optimizer) -> None:
        self.name = str(config.optim.schedule).lower()
        self.options = schedule_options(config)  # parsed here, checked (with the recipe) by mstt.checks
        max_steps = int(config.trainer.max_steps)
        minutes = config.trainer.max_minutes
        self.budget_seconds = float(minutes) * 60 if minutes else None
        self.time_progress = 0.0  # training seconds / budget, set by after_step
        self.scheduler: Any = None
        if self.name == "plateau":
            p: PlateauOptions = self.options
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode=config.trainer.monitor_mode,
                factor=p.factor,
                patience=p.patience,
                threshold=p.threshold,
                min_lr=p.min_lr,
            )
        elif self.name == "cosine":
            c: CosineOptions = self.options
            floor = c.min_lr / config.optim.lr

            def cosine(step: int) -> float:
                if step < c.warmup_steps:
                    return (step + 1) / c.warmup_steps
                span = max(1, max_steps - c.warmup_steps)
                progress = min(1.0, max((step - c.warmup_steps) / span, self.time_progress))
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
        elif self.name == "step":
            s: StepOptions = self.options
            self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.size(max_steps), gamma=s.gamma)

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


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The first parameter group's learning rate."""
    return float(optimizer.param_groups[0]["lr"])
