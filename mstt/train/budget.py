"""The time budget (``trainer.max_minutes``): what the next step and the end of training are projected to take.

The trainer checks before each step that the step and the end of training (the final
validation and save) fit in what is left; so a run overruns its budget by at most one step,
as long as the end's estimate bounds it from above (see :meth:`StepClock.end_estimate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# ``on_step(step, seconds)``: called after every completed step with its number and its wall
# seconds (the step and any save after it; validations excluded). It may raise to stop the run
# (``mstt bench``'s guard does), which then ends without a final save.
StepHook = Callable[[int, float], None]

RECENT_STEPS = 20  # steps whose mean predicts the next one


@dataclass
class StepClock:
    """Wall seconds of this session's steps (each with the save after it), last validation and last save."""

    step_times: list[float] = field(default_factory=list)
    validation_seconds: float | None = None
    save_seconds: float = 0.0

    def add_step(self, seconds: float) -> None:
        """Record a step (the session's first, which starts the data loader and allocator, is kept apart)."""
        self.step_times = self.step_times[:1] + (self.step_times[1:] + [seconds])[-RECENT_STEPS:] \
            if self.step_times else [seconds]

    def step_estimate(self) -> float:
        """The next step's seconds: the mean of the recent steps after the session's first (the first while alone)."""
        times = self.step_times[1:] or self.step_times
        return sum(times) / len(times) if times else 0.0

    def end_estimate(self, validation_batches: int) -> float:
        """Seconds the end of training takes after the last step: the final validation and save.

        The last validation's length when this session validated; else one training step per
        validation batch, an upper bound, since a validation batch is a forward pass of a
        training batch's size without its backward pass and update.
        """
        validation = self.validation_seconds
        if validation is None:
            validation = self.step_estimate() * validation_batches
        return validation + self.save_seconds

    def fits(self, seconds: float, budget: float, validation_batches: int) -> bool:
        """Whether one more step and the end of training are projected to end within ``budget`` (seconds)."""
        if seconds >= budget:
            return False
        if not self.step_times:
            return True  # nothing timed in this session yet: the first step always runs
        return seconds + self.step_estimate() + self.end_estimate(validation_batches) <= budget
