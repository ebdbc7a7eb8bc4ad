"""Training: the Trainer, checkpoints, optimisers and schedules, logs and data parallelism."""

from mstt.devices import resolve_device  # re-exported for older imports
from mstt.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, load_checkpoint
from mstt.train.distributed import collate, seed_everything
from mstt.train.trainer import Trainer, TrainResult, train

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "TrainResult",
    "Trainer",
    "collate",
    "load_checkpoint",
    "resolve_device",
    "seed_everything",
    "train",
]
