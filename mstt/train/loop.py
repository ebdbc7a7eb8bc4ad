"""The older import path of the training loop, now :mod:`mstt.train.trainer`."""

from mstt.train.state import LONG_RUN_HOURS, PROJECT_AFTER_STEPS, TrainResult, projection_note
from mstt.train.trainer import Trainer, train

__all__ = ["LONG_RUN_HOURS", "PROJECT_AFTER_STEPS", "TrainResult", "Trainer", "projection_note", "train"]
